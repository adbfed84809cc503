"""Day-two safety (issues 14 and 16): compared with the committed output, a change that the
API server refuses to make in place (KKC156) or that destroys data (KKC157, KKC158) is
refused by `kkc build` (exit 2, nothing written) unless --allow-destructive, marked at the
top of `kkc diff`, and an error of `kkc check`."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import git
import pytest

from conftest import snapshot
from kkc import safety

WHERE = "deploy/s/kustomization.yaml"


def _sts(size: str = "10Gi", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "mariadb", "namespace": "openstack"},
        "spec": {
            "replicas": 1,
            "serviceName": "mariadb",
            "selector": {"matchLabels": {"app": "mariadb"}},
            "template": {"spec": {"containers": [{"name": "mariadb", "image": "m:1"}]}},
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": size}},
                    },
                }
            ],
            **spec,
        },
    }


def _pvc(size: str = "50Gi", modes: tuple[str, ...] = ("ReadWriteOnce",)) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "glance-images", "namespace": "openstack"},
        "spec": {"accessModes": list(modes), "resources": {"requests": {"storage": size}}},
    }


def _codes_and_messages(before: list[Any], after: list[Any]) -> list[tuple[str, str]]:
    return [(p.code or "", p.message) for p in safety.compare(before, after, None, WHERE)]


def test_a_claim_may_grow_but_not_shrink_nor_change_its_access_modes() -> None:
    assert safety.compare([_pvc("50Gi")], [_pvc("100Gi")], None, WHERE) == []
    assert safety.compare([_pvc("1Ti")], [_pvc("1100Gi")], None, WHERE) == []
    [shrink] = safety.compare([_pvc("50Gi")], [_pvc("20Gi")], None, WHERE)
    assert str(shrink).startswith(
        f"{WHERE}:1:1: KKC156 PersistentVolumeClaim/openstack/glance-images: "
        "spec.resources.requests.storage 50Gi -> 20Gi: the API server refuses to change this "
        "field in place, so the sync would fail; a claim's spec cannot change except for a "
        "larger spec.resources.requests.storage"
    )
    [modes] = safety.compare([_pvc()], [_pvc(modes=("ReadWriteMany",))], None, WHERE)
    assert 'spec.accessModes ["ReadWriteOnce"] -> ["ReadWriteMany"]' in modes.message
    assert "give the claim a new name" in modes.message
    new_class = _pvc()
    new_class["spec"]["storageClassName"] = "fast-ssd"
    [cls] = safety.compare([_pvc()], [new_class], None, WHERE)
    assert "spec.storageClassName (unset) -> fast-ssd" in cls.message


def test_statefulset_claim_templates_selector_and_service_name_are_immutable() -> None:
    assert safety.compare([_sts()], [_sts(replicas=1)], None, WHERE) == []
    image = _sts()
    image["spec"]["template"]["spec"]["containers"][0]["image"] = "m:2"
    assert safety.compare([_sts()], [image], None, WHERE) == []  # the template rolls
    [grow] = _codes_and_messages([_sts("10Gi")], [_sts("20Gi")])
    assert grow[0] == "KKC156"
    assert grow[1].startswith(
        "StatefulSet/openstack/mariadb: spec.volumeClaimTemplates[data].spec.resources."
        "requests.storage 10Gi -> 20Gi: the API server refuses to change this field in place"
    )
    assert (
        "`kubectl -n openstack delete statefulset mariadb --cascade=orphan` (the pods and "
        "their claims stay)" in grow[1]
    )
    assert "(`data-mariadb-<ordinal>`) with `kubectl -n openstack patch pvc`" in grow[1]
    [[_, name]] = _codes_and_messages([_sts()], [_sts(serviceName="mariadb-headless")])
    assert "spec.serviceName mariadb -> mariadb-headless" in name
    moved = _sts(selector={"matchLabels": {"app": "db"}})
    [[_, sel]] = _codes_and_messages([_sts()], [moved])
    assert "spec.selector.matchLabels.app mariadb -> db" in sel


def test_workload_selectors_and_service_cluster_ips_are_immutable_jobs_are_replaced() -> None:
    def dep(kind: str, app: str) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": {"name": "api", "namespace": "openstack"},
            "spec": {"selector": {"matchLabels": {"app": app}}, "replicas": 2},
        }

    for kind in ("Deployment", "DaemonSet"):
        [[code, msg]] = _codes_and_messages([dep(kind, "a")], [dep(kind, "b")])
        assert (code, msg.split(":")[0]) == ("KKC156", f"{kind}/openstack/api")
        assert f"delete {kind.lower()} api --cascade=orphan" in msg

    def svc(**spec: Any) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "m"}, "spec": spec}

    assert safety.compare([svc(type="ClusterIP")], [svc(type="NodePort")], None, WHERE) == []
    [[_, headless]] = _codes_and_messages([svc()], [svc(clusterIP="None")])
    assert headless.startswith("Service/m: spec.clusterIP (unset) -> None: the API server")
    assert "`kubectl -n default delete service m`" in headless
    [[_, ext]] = _codes_and_messages([svc()], [svc(type="ExternalName")])
    assert "spec.type ClusterIP -> ExternalName" in ext

    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "db-sync"}}
    changed = copy.deepcopy(job)
    changed["spec"] = {"template": {"spec": {"containers": [{"name": "x", "image": "new"}]}}}
    assert safety.compare([job], [changed], None, WHERE) == []  # force/replace annotations


def _es(name: str, policy: str | None = "Owner") -> dict[str, Any]:
    target: dict[str, Any] = {"name": name}
    if policy:
        target["creationPolicy"] = policy
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": "openstack"},
        "spec": {"target": target},
    }


def test_removing_an_external_secret_that_owns_its_secret_is_destructive() -> None:
    keep = _es("keep")
    [[code, msg]] = _codes_and_messages([keep, _es("gone")], [keep])
    assert code == "KKC157"
    assert msg.startswith(
        "ExternalSecret/openstack/gone is removed: it owns Secret/openstack/gone "
        "(creationPolicy Owner), which the controller's prune deletes with it"
    )
    assert _codes_and_messages([keep, _es("gone", None)], [keep])[0][0] == "KKC157"  # default
    assert _codes_and_messages([keep, _es("gone", "Orphan")], [keep]) == []


# ---- the commands, on the keystone-only sites -------------------------------------------


def _build_commit(kkc, root: Path, site: str = "site-k") -> str:
    result = kkc(root, "build", site, "--commit")
    assert result.exit_code == 0, result.output
    return git.Repo(root).head.commit.hexsha


def _grow_mariadb(root: Path) -> int:
    """Set site-k's MariaDB storage to 20Gi (default 10Gi); the line of `storage:`."""
    path = root / "sites/site-k/site.yaml"
    text = path.read_text()
    added = "  mariadb:\n    server:\n      storage:\n        size: 20Gi\n"
    path.write_text(text.replace("services:\n", "services:\n" + added, 1))
    return path.read_text().splitlines().index("      storage:") + 1


def _switch_backend(root: Path) -> int:
    """Switch site-k to Secrets created by hand; the line of `backend:`."""
    path = root / "sites/site-k/site.yaml"
    path.write_text(path.read_text() + "secrets:\n  backend: existing\n  store: null\n")
    return path.read_text().splitlines().index("  backend: existing") + 1


MARIADB = (
    "KKC156 StatefulSet/openstack-k/mariadb: spec.volumeClaimTemplates[mariadb-data].spec."
    "resources.requests.storage 10Gi -> 20Gi: the API server refuses to change this field in "
    "place, so the sync would fail; keep the old value, or before the sync run `kubectl -n "
    "openstack-k delete statefulset mariadb --cascade=orphan` (the pods and their claims "
    "stay) and let the controller re-create it; the existing claims keep their old spec: for "
    "a larger size expand each (`mariadb-data-mariadb-<ordinal>`) with `kubectl -n "
    "openstack-k patch pvc`, where the StorageClass allows volume expansion (see "
    "docs/review.md#day-two-safety)"
)


def test_build_refuses_an_immutable_change_and_writes_nothing(small_site_repo: Path, kkc) -> None:
    _build_commit(kkc, small_site_repo)
    line = _grow_mariadb(small_site_repo)
    before = snapshot(small_site_repo / "deploy")
    result = kkc(small_site_repo, "build", "site-k", "--commit")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"sites/site-k/site.yaml:{line}:7: {MARIADB}",
        "kkc build: nothing written; once the way out above is taken (or to accept the "
        "loss), `kkc build --allow-destructive` writes it",
    ]
    assert snapshot(small_site_repo / "deploy") == before

    # the way out taken: --allow-destructive writes it, the finding is a warning
    result = kkc(small_site_repo, "build", "site-k", "--allow-destructive")
    assert result.exit_code == 0, result.output
    assert f"warning: sites/site-k/site.yaml:{line}:7: {MARIADB}" in result.stderr.splitlines()
    patch = small_site_repo / "deploy/site-k/stages/infra/patches/mariadb-statefulset.yaml"
    assert "storage: 20Gi" in patch.read_text()


def test_build_refuses_a_secret_backend_switch_unless_allowed(small_site_repo: Path, kkc) -> None:
    _build_commit(kkc, small_site_repo)
    line = _switch_backend(small_site_repo)
    before = snapshot(small_site_repo)
    result = kkc(small_site_repo, "build", "site-k", "-o", "json")
    assert result.exit_code == 2, result.output
    problems = json.loads(result.stdout)["problems"]
    assert [(p["file"], p["line"], p["col"], p["code"]) for p in problems] == [
        ("sites/site-k/site.yaml", line, 3, "KKC158"),
        *[("sites/site-k/site.yaml", line, 3, "KKC157")] * 3,
    ]
    assert problems[0]["message"].startswith(
        "the secret back end of a built site changes from external-secrets to existing: the 3 "
        "ExternalSecrets go, and with them (creationPolicy Owner) the Secrets they created"
    )
    assert [p["message"].split(" is removed")[0] for p in problems[1:]] == [
        f"ExternalSecret/openstack-k/{n}-secrets" for n in ("keystone", "mariadb", "rabbitmq")
    ]
    assert snapshot(small_site_repo) == before

    result = kkc(small_site_repo, "build", "site-k", "--allow-destructive")
    assert result.exit_code == 0, result.output
    warned = [w for w in result.stderr.splitlines() if w.startswith("warning:")]
    # the ExternalSecret files the build removed are not "not generated by kkc" (KKC329)
    assert [w.split(": ")[2].split()[0] for w in warned] == ["KKC158", *["KKC157"] * 3]
    assert not (small_site_repo / "deploy/site-k/stages/infra/secrets").exists()


def test_diff_marks_destructive_and_refused_changes_at_the_top(small_site_repo: Path, kkc) -> None:
    _build_commit(kkc, small_site_repo)
    _switch_backend(small_site_repo)
    result = kkc(small_site_repo, "diff", "site-k")
    assert result.exit_code == 1, result.output  # destructive is a difference, not refused
    lines = result.stdout.splitlines()
    assert lines[0] == ("DESTRUCTIVE: site-k: `kkc build` refuses this without --allow-destructive")
    assert [ln.split(": ")[1].split()[0] for ln in lines[1:5]] == ["KKC158", *["KKC157"] * 3]
    assert lines[5].startswith("site-k: 0 added, ")

    markdown = kkc(small_site_repo, "diff", "site-k", "-o", "markdown").stdout
    assert markdown.startswith(
        "> [!CAUTION]\n> **DESTRUCTIVE: site-k: `kkc build` refuses this without "
        "--allow-destructive**\n>\n> - sites/site-k/site.yaml:"
    )
    [row] = json.loads(kkc(small_site_repo, "diff", "site-k", "-o", "json").stdout)
    assert row["destructive"] is True
    assert [p["code"] for p in row["destructiveChanges"]] == ["KKC158", *["KKC157"] * 3]
    assert row["immutableChanges"] == []

    line = _grow_mariadb(small_site_repo)
    result = kkc(small_site_repo, "diff", "site-k")
    assert result.exit_code == 2, result.output
    lines = result.stdout.splitlines()
    assert lines[5:7] == [
        "REFUSED BY THE API SERVER: site-k: the sync would fail on these changes",
        f"  sites/site-k/site.yaml:{line}:7: {MARIADB}",
    ]
    assert result.stderr == "kkc diff: site-k: changes the API server refuses to make in place\n"
    [row] = json.loads(kkc(small_site_repo, "diff", "site-k", "-o", "json").stdout)
    assert [p["code"] for p in row["immutableChanges"]] == ["KKC156"]


def test_an_unchanged_site_is_not_compared_with_a_second_build(
    small_site_repo: Path, kkc, monkeypatch: pytest.MonkeyPatch
) -> None:
    _build_commit(kkc, small_site_repo)
    calls: list[Any] = []
    monkeypatch.setattr(safety, "committed_outputs", lambda *a: calls.append(a) or {})
    assert kkc(small_site_repo, "build", "site-k").exit_code == 0
    assert calls == []


def test_check_reports_them_against_the_revision_it_is_given(small_site_repo: Path, kkc) -> None:
    first = _build_commit(kkc, small_site_repo)
    line = _grow_mariadb(small_site_repo)
    assert kkc(small_site_repo, "build", "site-k", "--allow-destructive").exit_code == 0
    result = kkc(small_site_repo, "check", "site-k")  # built, not committed: against HEAD
    assert result.exit_code == 2, result.output
    assert result.stdout.splitlines() == [f"sites/site-k/site.yaml:{line}:7: {MARIADB}"]
    assert result.stderr.splitlines()[-1] == (
        "kkc check: site-k: changes the API server refuses to make in place or that destroy "
        "data (--allow-destructive accepts them)"
    )
    result = kkc(small_site_repo, "check", "site-k", "--allow-destructive")
    assert result.exit_code == 0, result.output
    assert f"warning: sites/site-k/site.yaml:{line}:7: {MARIADB}" in result.stderr.splitlines()

    repo = git.Repo(small_site_repo)
    repo.git.add("-A")
    repo.git.commit("-q", "-m", "site-k: 20Gi for MariaDB")
    assert kkc(small_site_repo, "check", "site-k").exit_code == 0  # HEAD has it now
    result = kkc(small_site_repo, "check", "site-k", "--against", first[:12], "-o", "json")
    assert result.exit_code == 2, result.output
    [row] = json.loads(result.stdout)
    assert [(p["line"], p["code"]) for p in row["problems"]] == [(line, "KKC156")]


def test_overlay_ha_on_a_built_site_b_changes_the_glance_claim_access_modes(
    site_repo: Path, kkc
) -> None:
    """Issue 14's example: two glance-api replicas need a ReadWriteMany image claim, which
    a bound claim cannot become; located at the replicas the ha overlay sets. (The site
    keeps its kolla MariaDB and RabbitMQ: the overlay's operators would be KKC159.)"""
    _build_commit(kkc, site_repo, "site-b")
    path = site_repo / "sites/site-b/site.yaml"
    kolla = "  mariadb: {provider: kolla}\n  rabbitmq: {provider: kolla}\n"
    text = path.read_text().replace("services:\n", "services:\n" + kolla, 1)
    path.write_text(text + "overlays: [ha]\n")
    line = (site_repo / "overlays/ha/defaults.yaml").read_text().splitlines().index("  glance:") + 2
    result = kkc(site_repo, "diff", "site-b")
    assert result.exit_code == 2, result.output
    assert result.stdout.splitlines()[:2] == [
        "REFUSED BY THE API SERVER: site-b: the sync would fail on these changes",
        f"  overlays/ha/defaults.yaml:{line}:11: KKC156 PersistentVolumeClaim/openstack-lab/"
        'glance-images: spec.accessModes ["ReadWriteOnce"] -> ["ReadWriteMany"]: the API '
        "server refuses to change this field in place, so the sync would fail; a claim's spec "
        "cannot change except for a larger spec.resources.requests.storage (a storage "
        "expansion, where the StorageClass allows it); keep the old value, or give the claim "
        "a new name and copy the data over, or delete the claim (its data is lost) before the "
        "sync (see docs/review.md#day-two-safety)",
    ]
    before = snapshot(site_repo / "deploy")
    assert kkc(site_repo, "build", "site-b").exit_code == 2
    assert snapshot(site_repo / "deploy") == before


# ---- the storage class of the database volumes (issue 17) --------------------------------


def _mariadb_statefulset(storage_class: str) -> dict:
    template = {
        "metadata": {"name": "mariadb-data"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": "10Gi"}},
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "mariadb", "namespace": "openstack"},
        "spec": {"serviceName": "mariadb", "volumeClaimTemplates": [template]},
    }


def _operator_cluster(kind: str, storage_class: str, size: str = "10Gi") -> dict:
    api, field = {
        "MariaDB": ("k8s.mariadb.com/v1alpha1", "storage"),
        "RabbitmqCluster": ("rabbitmq.com/v1beta1", "persistence"),
    }[kind]
    name = "mariadb" if kind == "MariaDB" else "rabbitmq"
    volumes = {"storageClassName": storage_class, "size" if kind == "MariaDB" else "storage": size}
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": "openstack"},
        "spec": {field: volumes},
    }


def test_a_storage_class_change_is_refused_with_its_way_out() -> None:
    """Of the kolla StatefulSet's claim template, of the MariaDB's storage and of the
    RabbitmqCluster's persistence: KKC156 naming the object, the field and the way out."""
    [sts] = safety.compare(
        [_mariadb_statefulset("fast-ssd")], [_mariadb_statefulset("slow-hdd")], None, "w"
    )
    assert (sts.path, sts.code) == ("w", "KKC156")
    assert sts.message.startswith(
        "StatefulSet/openstack/mariadb: spec.volumeClaimTemplates[mariadb-data].spec."
        "storageClassName fast-ssd -> slow-hdd: the API server refuses to change this field in "
        "place, so the sync would fail; a bound claim never changes its storage class, so the "
        "data does not move with it: keep the old storage class, or dump the data, delete "
        "StatefulSet mariadb and its claims before the sync"
    )
    [mdb] = safety.compare(
        [_operator_cluster("MariaDB", "fast-ssd")],
        [_operator_cluster("MariaDB", "slow")],
        None,
        "w",
    )
    assert mdb.code == "KKC156"
    assert mdb.message.startswith(
        "MariaDB/openstack/mariadb: spec.storage.storageClassName fast-ssd -> slow: "
    )
    assert "take a backup, and restore it into the MariaDB on new claims" in mdb.message
    [rmq] = safety.compare(
        [_operator_cluster("RabbitmqCluster", "fast-ssd")],
        [_operator_cluster("RabbitmqCluster", "slow")],
        None,
        "w",
    )
    assert rmq.message.startswith(
        "RabbitmqCluster/openstack/rabbitmq: spec.persistence.storageClassName fast-ssd -> slow: "
    )
    # a larger MariaDB or RabbitMQ volume is the operators' business (resized in use)
    for kind in ("MariaDB", "RabbitmqCluster"):
        grown = _operator_cluster(kind, "fast-ssd", "50Gi")
        assert safety.compare([_operator_cluster(kind, "fast-ssd")], [grown], None, "w") == []
