"""Layering and provenance: compiler defaults < sites/defaults.yaml < overlays (listed order)
< site. Maps merge deeply, lists replace, an explicit null deletes an inherited key."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
import yaml

from helpers import write
from kkc.errors import InputError
from kkc.site import Origin, load_site

FLEET = """\
openstack:
  registry: fleet.example.com
  release: "2025.1"
placement:
  nodeSelector:
    zone: eu
    tier: control
  tolerations:
    - key: a
      operator: Exists
    - key: b
      operator: Exists
services:
  keystone:
    api:
      replicas: 2
      workers: 8
secrets:
  backend: external-secrets
  store: {kind: ClusterSecretStore, name: vault}
gitops:
  repoURL: https://git.example.com/sites.git
"""

HA = """\
services:
  keystone:
    api:
      replicas: 3
  mariadb:
    server:
      resources:
        limits:
          memory: 8Gi
"""

BIG = """\
services:
  keystone:
    api:
      replicas: 5
  memcached:
    server:
      replicas: 3
"""

SITE = """\
schemaVersion: 1
name: {name}
overlays: [{overlays}]
endpoints:
  hosts:
    keystone: id.example.com
placement:
  nodeSelector:
    tier: null
  tolerations:
    - key: c
      operator: Exists
services:
  memcached:
    server:
      replicas: 2
"""

COMPONENT = "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"


@pytest.fixture
def layered(tmp_path: Path) -> Path:
    root = tmp_path / "layers"
    write(root, "sites/defaults.yaml", FLEET)
    for name, defaults in (("ha", HA), ("big", BIG)):
        write(root, f"overlays/{name}/defaults.yaml", defaults)
        write(root, f"overlays/{name}/kustomization.yaml", COMPONENT)
    write(root, "sites/s1/site.yaml", SITE.format(name="s1", overlays="ha, big"))
    write(root, "sites/s2/site.yaml", SITE.format(name="s2", overlays="big, ha"))
    return root


def compiler_default_line(text: str) -> int:
    """1-based line of ``text`` in the packaged compiler defaults."""
    lines = (resources.files("kkc") / "data" / "defaults.yaml").read_text().splitlines()
    [n] = [i + 1 for i, ln in enumerate(lines) if ln == text]
    return n


COMPILER_DEFAULTS = Path(str(resources.files("kkc") / "data" / "defaults.yaml")).resolve()
PROJECT = Path(__file__).resolve().parent.parent


def test_precedence_and_origins(layered: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(layered)  # kkc is not inside this site repository: an absolute path
    site = load_site(layered, "s1")
    # compiler defaults only
    assert site.get("openstack.namespace") == "openstack.kolla"
    line = compiler_default_line("  namespace: openstack.kolla")
    assert site.explain("openstack.namespace") == (
        "openstack.kolla",
        [Origin(COMPILER_DEFAULTS.as_posix(), line, 3, "compiler defaults")],
    )
    # fleet defaults over compiler defaults
    assert site.explain("openstack.registry") == (
        "fleet.example.com",
        [Origin("sites/defaults.yaml", 2, 3, "fleet defaults")],
    )
    assert site.explain("services.keystone.api.workers") == (
        8,
        [Origin("sites/defaults.yaml", 17, 7, "fleet defaults")],
    )
    # overlays over fleet defaults, the later listed overlay wins
    assert site.explain("services.keystone.api.replicas") == (
        5,
        [Origin("overlays/big/defaults.yaml", 4, 7, "overlay big")],
    )
    # the site over overlays
    assert site.explain("services.memcached.server.replicas") == (
        2,
        [Origin("sites/s1/site.yaml", 16, 7, "site")],
    )


def test_overlay_order_is_the_listed_order(layered: Path) -> None:
    site = load_site(layered, "s2")  # overlays: [big, ha]
    assert site.explain("services.keystone.api.replicas") == (
        3,
        [Origin("overlays/ha/defaults.yaml", 4, 7, "overlay ha")],
    )
    assert [layer.name for layer in site.layers] == [
        "compiler defaults",
        "fleet defaults",
        "overlay big",
        "overlay ha",
        "site",
    ]


def test_maps_merge_deeply(layered: Path) -> None:
    site = load_site(layered, "s1")
    resources_ = site.get("services.mariadb.server.resources")
    assert resources_ == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "8Gi"}}
    _, origins = site.explain("services.mariadb.server.resources.limits.memory")
    assert origins == [Origin("overlays/ha/defaults.yaml", 9, 11, "overlay ha")]
    _, origins = site.explain("services.mariadb.server.resources.requests.cpu")
    assert [o.layer for o in origins] == ["compiler defaults"]
    # keystone api: replicas from an overlay, workers from the fleet, resources from the compiler
    api = site.get("services.keystone.api")
    assert (api["replicas"], api["workers"], api["resources"]["limits"]) == (
        5,
        8,
        {"memory": "1Gi"},
    )


def test_lists_replace(layered: Path) -> None:
    site = load_site(layered, "s1")
    assert site.explain("placement.tolerations") == (
        [{"key": "c", "operator": "Exists"}],
        [Origin("sites/s1/site.yaml", 10, 3, "site")],
    )


def test_null_deletes_an_inherited_key(layered: Path) -> None:
    site = load_site(layered, "s1")
    assert site.get("placement.nodeSelector") == {"zone": "eu"}
    assert site.explain("placement.nodeSelector.tier") == (
        None,
        [Origin("sites/s1/site.yaml", 9, 5, "site", deleted=True)],
    )
    assert site.explain("placement.nodeSelector.zone") == (
        "eu",
        [Origin("sites/defaults.yaml", 6, 5, "fleet defaults")],
    )


def test_null_deletes_an_inherited_map(layered: Path) -> None:
    write(
        layered,
        "sites/s3/site.yaml",
        SITE.format(name="s3", overlays="ha")
        + "  mariadb:\n    server:\n      resources:\n        limits: null\n",
    )
    site = load_site(layered, "s3")
    assert site.get("services.mariadb.server.resources") == {
        "requests": {"cpu": "500m", "memory": "1Gi"}
    }
    assert site.explain("services.mariadb.server.resources.limits") == (
        None,
        [Origin("sites/s3/site.yaml", 20, 9, "site", deleted=True)],
    )
    # nothing below the deleted map keeps an origin
    assert site.explain("services.mariadb.server.resources.limits.memory") == (None, [])


def test_site_overlay_list_replaces_the_fleet_list(layered: Path) -> None:
    write(layered, "sites/defaults.yaml", FLEET + "overlays: [ha]\n")
    write(layered, "sites/s4/site.yaml", SITE.format(name="s4", overlays="big"))
    write(
        layered,
        "sites/s5/site.yaml",
        SITE.format(name="s5", overlays="").replace("overlays: []\n", ""),
    )
    s4 = load_site(layered, "s4")
    assert [layer.name for layer in s4.layers if layer.name.startswith("overlay")] == [
        "overlay big"
    ]
    assert s4.get("services.mariadb.server.resources.limits.memory") == "2Gi"  # not ha's 8Gi
    s5 = load_site(layered, "s5")  # no list of its own: the fleet's applies
    assert [layer.name for layer in s5.layers if layer.name.startswith("overlay")] == ["overlay ha"]
    assert s5.get("services.mariadb.server.resources.limits.memory") == "8Gi"


def test_overlay_yaml_error_points_at_the_overlay_file(layered: Path) -> None:
    write(layered, "overlays/ha/defaults.yaml", HA + "  keystone:\n    api:\n      replica: 1\n")
    with pytest.raises(InputError) as exc:
        load_site(layered, "s1")
    assert [str(p) for p in exc.value.problems] == [
        'overlays/ha/defaults.yaml:10:3: KKC102 duplicate key "keystone" (first defined at line 2)'
    ]


def test_overlay_schema_error_points_at_the_overlay_file(layered: Path) -> None:
    write(layered, "overlays/big/defaults.yaml", BIG.replace("replicas: 3", "replicas: many"))
    with pytest.raises(InputError) as exc:
        load_site(layered, "s1")
    assert [str(p) for p in exc.value.problems] == [
        "overlays/big/defaults.yaml:7:17: KKC111 services.memcached.server.replicas: "
        "must be of integer type"
    ]


def test_cli_explain_scalar(layered: Path, kkc) -> None:
    result = kkc(layered, "show", "s1", "--explain", "services.keystone.api.replicas")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "services.keystone.api.replicas: 5\n"
        "  overlays/big/defaults.yaml:4:7 (set by layer overlay big)\n"
    )


def test_cli_explain_deleted(layered: Path, kkc) -> None:
    result = kkc(layered, "show", "s1", "--explain", "placement.nodeSelector.tier")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "placement.nodeSelector.tier: null\n  sites/s1/site.yaml:9:5 (deleted by layer site)\n"
    )


def test_cli_explain_map(layered: Path, kkc) -> None:
    result = kkc(layered, "show", "s1", "--explain", "placement.nodeSelector")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        'placement.nodeSelector: {"zone": "eu"}\n'
        "  sites/s1/site.yaml:8:3 (set by layer site)\n"
        "  sites/defaults.yaml:6:5 (set by layer fleet defaults)\n"
        "  sites/s1/site.yaml:9:5 (deleted by layer site)\n"
    )


def test_cli_explain_json(layered: Path, kkc) -> None:
    result = kkc(layered, "show", "s1", "--explain", "openstack.registry", "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "path": "openstack.registry",
        "value": "fleet.example.com",
        "origins": [
            {
                "path": "sites/defaults.yaml",
                "line": 2,
                "col": 3,
                "layer": "fleet defaults",
                "deleted": False,
                "overridden": False,
            }
        ],
    }


def test_cli_explain_unknown_path(layered: Path, kkc) -> None:
    result = kkc(layered, "show", "s1", "--explain", "services.keystone.api.replica")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "kkc show: services.keystone.api.replica: no such key in the effective definition of s1; "
        'did you mean "services.keystone.api.replicas"?\n'
    )
    result = kkc(layered, "show", "s1", "--explain", "no.such.thing")
    assert result.exit_code == 2
    assert (
        result.stderr == "kkc show: no.such.thing: no such key in the effective definition of s1\n"
    )


BROKEN = "      memoryMB: lots\nregoin: FRA1\n"  # lines 17 and 18, under memcached's server


def test_cli_show_of_an_invalid_site_prints_what_resolves_then_the_problems(
    layered: Path, kkc
) -> None:
    write(layered, "sites/s3/site.yaml", SITE.format(name="s3", overlays="ha, nope") + BROKEN)
    problems = [
        'sites/s3/site.yaml:3:16: KKC124 overlay "nope" not found in overlays/ (overlays: big, ha)',
        "sites/s3/site.yaml:17:17: KKC111 services.memcached.server.memoryMB: must be of "
        "integer type",
        'sites/s3/site.yaml:18:1: KKC110 regoin: unknown key; did you mean "region"?',
    ]
    result = kkc(layered, "show", "s3")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == problems
    shown = yaml.safe_load(result.stdout)
    assert shown["regoin"] == "FRA1"
    assert shown["services"]["keystone"]["api"]["replicas"] == 3  # overlay ha
    server = shown["services"]["memcached"]["server"]
    assert (server["replicas"], server["memoryMB"]) == (2, "lots")
    assert shown["overlays"] == ["ha", "nope"]

    result = kkc(layered, "show", "s3", "--explain", "services.keystone.api.replicas")
    assert result.exit_code == 2
    assert result.stdout == (
        "services.keystone.api.replicas: 3\n"
        "  overlays/ha/defaults.yaml:4:7 (set by layer overlay ha)\n"
    )
    assert result.stderr.splitlines() == problems
    # a path the partial definition does not have: the problems only
    result = kkc(layered, "show", "s3", "--explain", "services.keystone.api.replica")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == problems


def test_cli_show_of_a_site_whose_file_does_not_parse(layered: Path, kkc) -> None:
    """The other layers still resolve: the fleet defaults and the compiler defaults."""
    write(layered, "sites/s3/site.yaml", "name: [s3\n")
    result = kkc(layered, "show", "s3", "--explain", "openstack.registry")
    assert result.exit_code == 2
    assert result.stdout == (
        'openstack.registry: "fleet.example.com"\n'
        "  sites/defaults.yaml:2:3 (set by layer fleet defaults)\n"
    )
    assert result.stderr.splitlines() == [
        "sites/s3/site.yaml:2:1: KKC101 YAML syntax error: expected ',' or ']', but got "
        "'<stream end>'"
    ]


def test_cli_show_prints_the_effective_definition(layered: Path, kkc) -> None:
    result = kkc(layered, "show", "s1")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout) == load_site(layered, "s1").data


@pytest.mark.skipif(
    not COMPILER_DEFAULTS.is_relative_to(PROJECT), reason="kkc is not run from this checkout"
)
def test_compiler_defaults_are_shown_where_the_checkout_has_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kkc
) -> None:
    """In a checkout of kkc (its example sites), the compiler defaults are the file
    compiler/kkc/data/defaults.yaml, however kkc is started; outside the checkout, from a
    directory that holds the checkout, relative to the working directory."""
    line = compiler_default_line('  tagSuffix: ""')
    result = kkc(PROJECT, "show", "site-a", "--explain", "openstack.tagSuffix")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        'openstack.tagSuffix: ""',
        f"  compiler/kkc/data/defaults.yaml:{line}:3 (set by layer compiler defaults)",
    ]
    root = tmp_path / "repo"
    write(root, "sites/s1/site.yaml", SITE.format(name="s1", overlays=""))
    write(root, "sites/defaults.yaml", FLEET)
    monkeypatch.chdir(PROJECT.parent)
    site = load_site(root, "s1")
    [origin] = site.explain("openstack.tagSuffix")[1]
    assert origin.path == f"{PROJECT.name}/compiler/kkc/data/defaults.yaml"
