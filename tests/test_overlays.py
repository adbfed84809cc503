"""Overlays: the every-stage component, per-stage components, their checks, and the
warning for two overlays that disagree."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import snapshot
from helpers import add_overlays, commit, write
from kkc import kustomize, report
from kkc.yamlio import load_stream

COMPONENT = "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
EVERY_STAGE = (
    COMPONENT
    + """\
patches:
  - target: {kind: Deployment}
    patch: |
      - op: add
        path: /metadata/annotations/example.com~1team
        value: cloud
"""
)
INFRA = COMPONENT + "resources:\n  - marker-configmap.yaml\n"
MARKER = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: overlay-marker\ndata:\n  a: b\n"


def use_overlays(root: Path, names: str, files: dict[str, str], site: str = "site-a") -> None:
    add_overlays(root, site, *names.split(", "))
    paths = [write(root, rel, text) for rel, text in files.items()]
    commit(
        root, [f"sites/{site}/site.yaml", *(p.relative_to(root).as_posix() for p in paths)], "ov"
    )


def test_overlay_components_apply_per_stage_and_each_stage_builds_alone(
    site_repo: Path, kkc
) -> None:
    use_overlays(
        site_repo,
        "team",
        {
            "overlays/team/kustomization.yaml": EVERY_STAGE,
            "overlays/team/infra/kustomization.yaml": INFRA,
            "overlays/team/infra/marker-configmap.yaml": MARKER,
        },
    )
    result = kkc(site_repo, "build", "site-a")
    assert result.exit_code == 0, result.output
    stages = site_repo / "deploy" / "site-a" / "stages"
    for stage in sorted(p.name for p in stages.iterdir()):
        kust = yaml.safe_load((stages / stage / "kustomization.yaml").read_text())
        expected = ["../../../../overlays/team"]
        if stage == "infra":
            expected.append("../../../../overlays/team/infra")
        assert kust["components"] == expected, stage
        objs = load_stream(kustomize.build(stages / stage, stage))  # each stage alone
        for obj in objs:
            if obj["kind"] == "Deployment":
                assert obj["metadata"]["annotations"]["example.com/team"] == "cloud"
    top = yaml.safe_load((site_repo / "deploy" / "site-a" / "kustomization.yaml").read_text())
    assert "components" not in top
    whole = load_stream(kustomize.build(site_repo / "deploy" / "site-a", "site"))
    markers = [o for o in whole if o["metadata"]["name"] == "overlay-marker"]
    assert len(markers) == 1
    assert markers[0]["metadata"]["labels"]["kkc.openstack.org/stage"] == "infra"


@pytest.mark.parametrize(
    "files, expected",
    [
        pytest.param(
            {
                "overlays/x/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\n"
                "kind: Kustomization\n"
            },
            "overlays/x/kustomization.yaml:2:7: KKC127 an overlay's kustomization must be a "
            "Component (apiVersion: kustomize.config.k8s.io/v1alpha1, kind: Component)",
            id="not-a-component",
        ),
        pytest.param(
            {"overlays/x/kustomization.yaml": INFRA, "overlays/x/marker-configmap.yaml": MARKER},
            "overlays/x/kustomization.yaml:3:1: KKC127 this component applies to every stage, "
            "so its resources would be added once per stage; move them to the stage they "
            "belong to (overlays/<name>/<stage>/, stages: infra, db, identity, register, "
            "services, compute, finish)",
            id="resources-every-stage",
        ),
        pytest.param(
            {"overlays/x/servics/kustomization.yaml": COMPONENT},
            'overlays/x/servics/kustomization.yaml:1:1: KKC127 "servics" is not a stage '
            "(stages: infra, db, identity, register, services, compute, finish); did you mean "
            '"services"?',
            id="unknown-stage",
        ),
    ],
)
def test_invalid_overlay_components_exit_2_and_write_nothing(
    site_repo: Path, kkc, files: dict[str, str], expected: str
) -> None:
    use_overlays(site_repo, "x", files)
    before = snapshot(site_repo)
    result = kkc(site_repo, "build", "site-a")
    assert result.exit_code == 2, result.output
    assert result.stderr == expected + "\n"
    assert snapshot(site_repo) == before


def test_two_overlays_that_disagree_are_reported_unless_the_site_decides(
    site_repo: Path, kkc
) -> None:
    one = "services:\n  memcached:\n    server:\n      memoryMB: 512\n"
    two = "services:\n  memcached:\n    server:\n      memoryMB: 2048\n"
    site = site_repo / "sites" / "site-a" / "site.yaml"
    original = site.read_text()
    use_overlays(
        site_repo,
        "small, large",
        {"overlays/small/defaults.yaml": one, "overlays/large/defaults.yaml": two},
    )
    # site-a sets memcached.server.memoryMB itself: no warning
    assert "      memoryMB: 1024\n" in original
    result = kkc(site_repo, "render", "site-a")
    assert result.exit_code == 0, result.output
    assert "KKC128" not in result.stderr
    site.write_text(site.read_text().replace("      memoryMB: 1024\n", ""))
    result = kkc(site_repo, "render", "site-a")
    assert result.exit_code == 0, result.output
    assert (
        "warning: overlays/large/defaults.yaml:4:17: KKC128 services.memcached.server.memoryMB: "
        "overlay large sets 2048 but overlay small (overlays/small/defaults.yaml:4:17) sets "
        "512; the later listed overlay wins; set the value in the site to decide\n"
    ) in result.stderr


PRIO_A = COMPONENT + (
    "patches:\n  - path: keystone-prio.yaml\n    target: {kind: Deployment, name: keystone-api}\n"
)
PRIO_A_PATCH = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: keystone-api
spec:
  template:
    spec:
      priorityClassName: prio-a
      containers:
        - name: keystone-api
          imagePullPolicy: Always
"""
PRIO_B = COMPONENT + (
    "patches:\n"
    "  - target: {kind: Deployment, name: keystone-api}\n"
    "    patch: |-\n"
    "      - {op: replace, path: /spec/template/spec/priorityClassName, value: prio-b}\n"
    "  - patch: |\n"
    "      apiVersion: apps/v1\n"
    "      kind: Deployment\n"
    "      metadata:\n"
    "        name: keystone-api\n"
    "      spec:\n"
    "        template:\n"
    "          spec:\n"
    "            containers:\n"
    "              - name: keystone-api\n"
    "                imagePullPolicy: Always\n"
    "                workingDir: /tmp\n"
)


def test_two_overlay_components_that_patch_one_field_differently_are_reported(
    site_repo: Path, kkc
) -> None:
    use_overlays(
        site_repo,
        "prio-a, prio-b",
        {
            "overlays/prio-a/kustomization.yaml": PRIO_A,
            "overlays/prio-a/keystone-prio.yaml": PRIO_A_PATCH,
            "overlays/prio-b/identity/kustomization.yaml": PRIO_B,
        },
    )
    result = kkc(site_repo, "render", "site-a")
    assert result.exit_code == 0, result.output
    # the JSON 6902 operation (inline, line 6) against the strategic-merge patch file;
    # imagePullPolicy is set to the same value by both, so it is no conflict
    assert [ln for ln in result.stderr.splitlines() if "KKC128" in ln] == [
        "warning: overlays/prio-b/identity/kustomization.yaml:6:75: KKC128 "
        "Deployment/keystone-api spec.template.spec.priorityClassName: overlay prio-b sets "
        "'prio-b' but overlay prio-a (overlays/prio-a/keystone-prio.yaml:8:26) sets 'prio-a'; "
        "the later listed overlay wins; set it in a site patch (sites/site-a/patches/) to "
        "decide"
    ]
    assert "priorityClassName: prio-b" in result.stdout  # the later listed overlay won

    from kkc.site import load_site

    # a different value for the container (matched by name) of the inline patch at line 17
    write(
        site_repo,
        "overlays/prio-b/identity/kustomization.yaml",
        PRIO_B.replace("imagePullPolicy: Always", "imagePullPolicy: Never"),
    )
    # a site patch decides priorityClassName
    write(
        site_repo,
        "sites/site-a/patches/prio.yaml",
        PRIO_A_PATCH.replace("prio-a", "prio-site").split("      containers:")[0],
    )
    found = load_site(site_repo, "site-a").warnings
    assert [report.line(w) for w in found if w.code == "KKC128"] == [
        "warning: overlays/prio-b/identity/kustomization.yaml:17:34: KKC128 "
        "Deployment/keystone-api spec.template.spec.containers[name=keystone-api]"
        ".imagePullPolicy: overlay prio-b sets 'Never' but overlay prio-a "
        "(overlays/prio-a/keystone-prio.yaml:11:28) sets 'Always'; the later listed overlay "
        "wins; set it in a site patch (sites/site-a/patches/) to decide"
    ]


def test_lint_reports_an_overlay_that_changes_nothing(small_site_repo: Path, kkc) -> None:
    """KKC129 on the keystone-only site-k (lint builds the site once per listed overlay);
    that site-a's own six overlays draw no KKC129 is test_cli's lint of site-a (1 warning)."""
    noop = COMPONENT + (
        "patches:\n  - target: {kind: CronJob, name: no-such-job}\n    patch: |\n"
        "      - {op: add, path: /metadata/labels/x, value: y}\n"
    )
    site_file = small_site_repo / "sites/site-k/site.yaml"  # no overlays of its own
    site_file.write_text(site_file.read_text() + "overlays: []\n")
    use_overlays(
        small_site_repo,
        "noop, team",
        {
            # the site sets keystone's replicas itself, so this default changes nothing
            "overlays/noop/defaults.yaml": "services:\n  keystone:\n    api:\n      replicas: 5\n",
            "overlays/noop/kustomization.yaml": noop,
            "overlays/team/kustomization.yaml": EVERY_STAGE,
        },
        site="site-k",
    )
    before = snapshot(small_site_repo)
    result = kkc(small_site_repo, "lint", "site-k")
    assert result.exit_code == 0, result.output
    lines = (small_site_repo / "sites/site-k/site.yaml").read_text().splitlines()
    [(line, col)] = [(i + 1, t.index("noop") + 1) for i, t in enumerate(lines) if "noop" in t]
    warning = (
        f'warning: sites/site-k/site.yaml:{line}:{col}: KKC129 overlay "noop" changes nothing '
        "for site site-k\n"
    )
    assert result.stderr == warning
    assert result.stdout.startswith("site-k: ") and result.stdout.endswith(" 1 warnings\n")
    strict = kkc(small_site_repo, "lint", "site-k", "--strict")
    assert strict.exit_code == 1
    assert strict.stderr == warning + "kkc lint --strict: 1 warnings\n"
    assert snapshot(small_site_repo) == before
