"""kkc's own output rules: dangling references (KKC307), Kolla images (KKC308),
config.json (KKC309) and the options of rendered INI files (KKC310)."""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

import pytest

from conftest import snapshot
from helpers import commit, write
from kkc import report
from kkc.lint import check_ini, check_kolla, check_references, references
from kkc.outputs import Outputs
from kkc.releases import RELEASES


def pod(kind: str, spec: dict) -> dict:
    if kind == "CronJob":
        return {"kind": kind, "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}
    return {"kind": kind, "spec": {"template": {"spec": spec}}}


def test_references_found_in_every_place_a_pod_can_name_them() -> None:
    spec = {
        "serviceAccountName": "sa",
        "imagePullSecrets": [{"name": "pull"}],
        "volumes": [
            {"name": "a", "configMap": {"name": "cm"}},
            {"name": "b", "secret": {"secretName": "sec"}},
            {"name": "c", "persistentVolumeClaim": {"claimName": "pvc"}},
            {"name": "d", "configMap": {"name": "maybe", "optional": True}},
            {"name": "e", "projected": {"sources": [{"secret": {"name": "proj"}}]}},
        ],
        "initContainers": [
            {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "env-sec"}}}]}
        ],
        "containers": [{"envFrom": [{"configMapRef": {"name": "env-cm"}}]}],
    }
    expected = {
        ("ServiceAccount", "sa"),
        ("Secret", "pull"),
        ("ConfigMap", "cm"),
        ("Secret", "sec"),
        ("PersistentVolumeClaim", "pvc"),
        ("Secret", "proj"),
        ("Secret", "env-sec"),
        ("ConfigMap", "env-cm"),
    }
    for kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"):
        assert set(references(pod(kind, spec))) == expected, kind
    sts = {"kind": "StatefulSet", "spec": {"serviceName": "headless", "template": {"spec": {}}}}
    assert ("Service", "headless") in set(references(sts))
    binding = {"kind": "RoleBinding", "subjects": [{"kind": "ServiceAccount", "name": "x"}]}
    assert set(references(binding)) == {("ServiceAccount", "x")}


def test_dangling_reference_is_exit_3_and_writes_nothing(site_repo: Path, kkc) -> None:
    path = "base/keystone/identity/keystone-api-deployment.yaml"
    text = (site_repo / path).read_text()
    write(site_repo, path, text.replace("name: keystone-api-kolla", "name: keystone-api-kola"))
    commit(site_repo, [path], "typo in a ConfigMap name")
    before = snapshot(site_repo)
    result = kkc(site_repo, "build", "site-a")
    assert result.exit_code == 3, result.output
    assert result.stderr == (
        "deploy/site-a/kustomization.yaml:1:1: KKC307 Deployment/keystone-api references "
        "ConfigMap 'keystone-api-kola', which is neither in the output nor provided outside "
        "it\n"
    )
    assert snapshot(site_repo) == before


def test_a_secret_whose_externalsecret_is_gone_is_dangling(site_repo: Path, kkc) -> None:
    """With secrets.backend external-secrets a service Secret exists only through its
    ExternalSecret: a patch that deletes the ExternalSecret leaves the Secret dangling."""
    write(
        site_repo,
        "sites/site-a/patches/no-nova-secrets.yaml",
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\n"
        "metadata: {name: nova-secrets}\n$patch: delete\n",
    )
    result = kkc(site_repo, "build", "site-a")
    assert result.exit_code == 3, result.output
    assert (
        "deploy/site-a/kustomization.yaml:1:1: KKC307 Deployment/nova-api references Secret "
        "'nova-secrets', which is neither in the output nor provided outside it\n"
    ) in result.stderr


class FakeSite:
    overrides: list = []  # no config overrides

    def __init__(self, **values: str) -> None:
        self.values = values

    def get(self, dotted: str, default=None):
        return self.values.get(dotted, default)

    def enabled(self, service: str) -> bool:
        return False


NO_SERVICES = Outputs([], [])  # what kkc.outputs.compute gives a site that enables none


SITE = FakeSite(
    **{
        "openstack.release": "2025.1",
        "openstack.distro": "rocky",
        "openstack.registry": "quay.io",
        "openstack.namespace": "openstack.kolla",
    }
)


def deployment(*images: str) -> dict:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return {"kind": "Deployment", "metadata": {"name": "d"}} | pod(
        "Deployment", {"containers": containers}
    )


def test_images_must_exist_in_the_release() -> None:
    objs = [
        deployment(
            "quay.io/openstack.kolla/keystone:2025.1-rocky-9",
            "quay.io/openstack.kolla/keystone@sha256:" + "0" * 64,  # a digest pins it
            "quay.io/openstack.kolla/keystone-apii:2025.1-rocky-9",
        )
    ]
    problems, warnings = check_kolla(SITE, objs, "deploy/x/kustomization.yaml")
    assert [str(p) for p in problems] == [
        'deploy/x/kustomization.yaml:1:1: KKC308 Deployment/d: "keystone-apii" is not an '
        'image of Kolla 20.6.0 (OpenStack 2025.1); did you mean "keystone-base"?'
    ]
    assert warnings == []


@pytest.mark.parametrize(
    ("image", "why"),
    [
        (
            "docker.io/library/busybox:1.36",
            'image "docker.io/library/busybox:1.36" is not a Kolla image from the site\'s '
            'registry "quay.io/openstack.kolla/" (openstack.registry, openstack.namespace)',
        ),
        (
            "quay.io/openstack.kolla/nova-api:2024.1-rocky-9",
            'image "quay.io/openstack.kolla/nova-api:2024.1-rocky-9" has tag "2024.1-rocky-9", '
            'not the tag of the site\'s release "2025.1-rocky-9" '
            "(openstack.release, openstack.distro, openstack.tagSuffix)",
        ),
        (
            "quay.io/openstack.kolla/nova-api",
            'image "quay.io/openstack.kolla/nova-api" has no tag, not the tag of the site\'s '
            'release "2025.1-rocky-9" (openstack.release, openstack.distro, openstack.tagSuffix)',
        ),
    ],
)
def test_foreign_images_and_other_releases_tags_are_refused(image: str, why: str) -> None:
    problems, _ = check_kolla(SITE, [deployment(image)], "d")
    assert [str(p) for p in problems] == [f"d:1:1: KKC308 Deployment/d: {why}"]


def test_an_image_from_another_release_is_exit_3_and_writes_nothing(site_repo: Path, kkc) -> None:
    """A site patch that pins an older release's image fails the build."""
    write(
        site_repo,
        "sites/site-a/patches/old-nova.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: nova-api}\nspec:\n"
        "  template:\n    spec:\n      containers:\n      - name: nova-api\n"
        "        image: registry.example.com/kolla/nova-api:2024.1-rocky-9\n",
    )
    before = snapshot(site_repo)
    result = kkc(site_repo, "build", "site-a")
    assert result.exit_code == 3, result.output
    assert 'KKC308 Deployment/nova-api: image "registry.example.com/kolla/nova-api:' in (
        result.stderr
    )
    assert snapshot(site_repo) == before


def test_config_json_is_judged_like_set_configs() -> None:
    good = json.dumps({"command": "true", "config_files": []})
    bad = json.dumps(
        {"command": "true", "config_files": [{"source": "/a", "owner": "x", "perm": "0600"}]}
    )
    objs = [
        {"kind": "ConfigMap", "metadata": {"name": "ok"}, "data": {"config.json": good}},
        {"kind": "ConfigMap", "metadata": {"name": "broken"}, "data": {"config.json": bad}},
    ]
    problems, _ = check_kolla(SITE, objs, "d")
    assert [str(p) for p in problems] == [
        'd:1:1: KKC309 ConfigMap/broken: config.json config_files[0]: missing required key "dest"'
    ]


def test_unknown_option_in_a_rendered_ini_is_exit_3_at_its_line(
    site_repo: Path, kkc, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A base that uses a newer release's option name (neutron 28 renamed
    tenant_network_types) on 2025.1 fails the build at the file and line."""
    new_name = dataclasses.replace(RELEASES["2025.1"], ml2_network_types="project_network_types")
    monkeypatch.setitem(RELEASES, "2025.1", new_name)
    before = snapshot(site_repo)
    result = kkc(site_repo, "build", "site-a")
    assert result.exit_code == 3, result.output
    message = (
        ":5:1: KKC310 [ml2] project_network_types: unknown option; did you mean "
        '"tenant_network_types"? (ml2_conf.ini of 2025.1)\n'
    )
    assert result.stderr == (
        f"deploy/site-a/stages/db/config/neutron-db-sync-kolla/ml2_conf.ini{message}"
        f"deploy/site-a/stages/finish/config/neutron-db-contract-kolla/ml2_conf.ini{message}"
        f"deploy/site-a/stages/services/config/neutron-server-kolla/ml2_conf.ini{message}"
    )
    assert snapshot(site_repo) == before


def test_rendered_ini_checks_only_openstack_files_and_warns_on_deprecations() -> None:
    site = FakeSite(**{"openstack.release": "2026.1"})
    site.name = "x"
    tree = {
        "stages/services/config/n-kolla/ml2_conf.ini": b"[ml2]\ntenant_network_types = geneve\n",
        "stages/services/config/n-kolla/qemu.conf": b"not = checked\n",
        "stages/services/config/n-kolla/nova.conf": b"[DEFAULT]\ncpu_alocation_ratio = 2\n",
    }
    problems, warnings = check_ini(site, tree, [], "deploy/x/kustomization.yaml", NO_SERVICES)
    assert [str(p) for p in problems] == [
        "deploy/x/stages/services/config/n-kolla/nova.conf:2:1: KKC310 [DEFAULT] "
        'cpu_alocation_ratio: unknown option; did you mean "cpu_allocation_ratio"? '
        "(nova.conf of 2026.1)"
    ]
    assert [report.line(w) for w in warnings] == [
        "warning: deploy/x/stages/services/config/n-kolla/ml2_conf.ini:2:1: KKC133 [ml2] "
        "tenant_network_types: deprecated; use [ml2] project_network_types instead"
    ]


def test_rendered_ini_changed_after_kustomize_is_checked_in_the_built_configmap() -> None:
    """A site patch can change a ConfigMap's INI file: the built object is checked too,
    and a file identical to one in the tree is not reported twice."""
    site = FakeSite(**{"openstack.release": "2025.1"})
    site.name = "x"
    good = "[DEFAULT]\ndebug = true\n"
    tree = {"stages/services/config/n-kolla/nova.conf": good.encode()}
    built = [
        {"kind": "ConfigMap", "metadata": {"name": "same"}, "data": {"nova.conf": good}},
        {
            "kind": "ConfigMap",
            "metadata": {"name": "patched"},
            "data": {"nova.conf": good + "[bogus_section]\nx = 1\n"},
        },
    ]
    problems, _ = check_ini(site, tree, built, "deploy/x/kustomization.yaml", NO_SERVICES)
    assert [str(p) for p in problems] == [
        "deploy/x/kustomization.yaml:1:1: KKC310 ConfigMap/patched nova.conf line 4: "
        "[bogus_section]: unknown section (nova.conf of 2025.1)"
    ]


def test_unknown_option_in_a_secret_drop_in_is_exit_3(
    site_repo: Path, kkc, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The oslo.config drop-ins kkc templates into the services' Secrets are checked
    against the catalog too (their values are placeholders, never secrets)."""
    # the module: kkc.services re-exports a function of the same name
    placement = importlib.import_module("kkc.services.placement")
    real = placement.service_secret

    def with_typo(site, svc, purpose, drop_in, **kw):
        typo = {"keystone_authtoken": {"memcache_secret_kee": '{{ index . "x" }}'}}
        return real(site, svc, purpose, {**drop_in, **typo}, **kw)

    monkeypatch.setattr(placement, "service_secret", with_typo)
    before = snapshot(site_repo)
    result = kkc(site_repo, "build", "site-a")
    assert result.exit_code == 3, result.output
    assert result.stderr == (
        "deploy/site-a/kustomization.yaml:1:1: KKC310 Secret/placement-secrets placement.conf "
        "line 5: [keystone_authtoken] memcache_secret_kee: unknown option; did you mean "
        '"memcache_secret_key"? (placement.conf of 2025.1)\n'
    )
    assert snapshot(site_repo) == before


def test_references_to_keys_and_ports_that_do_not_exist() -> None:
    """A name that exists is not enough: the key a pod reads and the port an Ingress
    routes to must exist too (keys of ConfigMaps, Secrets, ExternalSecret targets and
    Certificates; ports by name or number)."""
    site = FakeSite()
    spec = {
        "volumes": [
            {
                "name": "a",
                "configMap": {"name": "cm", "items": [{"key": "nova.conf", "path": "x"}]},
            },
            {
                "name": "b",
                "secret": {"secretName": "tls", "items": [{"key": "tls.pem", "path": "y"}]},
            },
        ],
        "containers": [
            {
                "name": "c",
                "env": [
                    {"name": "A", "valueFrom": {"secretKeyRef": {"name": "es", "key": "pasword"}}},
                    {"name": "B", "valueFrom": {"secretKeyRef": {"name": "es", "key": "password"}}},
                    {
                        "name": "C",
                        "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a.conf"}},
                    },
                ],
            }
        ],
    }
    objs = [
        {"kind": "Deployment", "metadata": {"name": "d"}} | pod("Deployment", spec),
        {"kind": "ServiceAccount", "metadata": {"name": "default"}},
        {"kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a.conf": ""}},
        {
            "kind": "ExternalSecret",
            "metadata": {"name": "es"},
            "spec": {"data": [{"secretKey": "password", "remoteRef": {"key": "k"}}]},
        },
        {"kind": "Certificate", "metadata": {"name": "c"}, "spec": {"secretName": "tls"}},
        {
            "kind": "Service",
            "metadata": {"name": "api"},
            "spec": {"ports": [{"name": "http", "port": 80}]},
        },
        {
            "kind": "Ingress",
            "metadata": {"name": "i"},
            "spec": {
                "rules": [
                    {
                        "http": {
                            "paths": [
                                {"backend": {"service": {"name": "api", "port": {"name": "htp"}}}},
                                {"backend": {"service": {"name": "api", "port": {"number": 80}}}},
                            ]
                        }
                    }
                ]
            },
        },
    ]
    assert [str(p) for p in check_references(site, objs, "d", NO_SERVICES)] == [
        "d:1:1: KKC307 Deployment/d references key 'nova.conf' of ConfigMap 'cm', which has no "
        "such key",
        "d:1:1: KKC307 Deployment/d references key 'pasword' of Secret 'es', which has no such key",
        "d:1:1: KKC307 Deployment/d references key 'tls.pem' of Secret 'tls', which has no such key",
        "d:1:1: KKC307 Ingress/i references port 'htp' of Service 'api', which has no such port",
    ]
