"""services.mariadb.provider: mariadb-operator (issue 17): a Galera MariaDB resource and a
scheduled Backup instead of the kolla StatefulSet, its clients on the primary Service, its
Secrets from the store, the controllers waiting for it, the input checks (KKC187, KKC126
for what stays unsupported, the backup storage) and the destructive guard (KKC159)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import snapshot
from helpers import add_site, minimal, set_engine
from kkc import gitops, lint, safety, validate
from kkc.outputs import compute
from kkc.services import galera
from kkc.site import load_site
from kkc.yamlio import load_stream

HA = "site-a-ha"


def _by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


# ---- input ---------------------------------------------------------------------------

OPERATOR = "services:\n  mariadb:\n    provider: mariadb-operator\n"
NO_BACKUP = "    backup: {enabled: false}\n"
CASES = [
    pytest.param(
        OPERATOR + "    server:\n      replicas: 2\n" + NO_BACKUP,
        "11:17: KKC187 services.mariadb.server.replicas: must be odd and at least 3 with "
        "provider mariadb-operator: a Galera cluster keeps its quorum only with a majority of "
        "an odd number of members (got 2)",
        id="KKC187-even",
    ),
    pytest.param(
        OPERATOR + "    server:\n      replicas: 1\n" + NO_BACKUP,
        "11:17: KKC187 services.mariadb.server.replicas: must be odd and at least 3 with "
        "provider mariadb-operator: a Galera cluster keeps its quorum only with a majority of "
        "an odd number of members (got 1)",
        id="KKC187-one",
    ),
    pytest.param(
        "services:\n  mariadb:\n    server:\n      replicas: 3\n",
        "10:17: KKC126 services.mariadb.server.replicas: must be 1: Galera clustering is not "
        "supported by kkc with provider kolla (services.mariadb.provider: mariadb-operator "
        "runs a Galera cluster)",
        id="KKC126-kolla",
    ),
    pytest.param(
        OPERATOR + NO_BACKUP + "  rabbitmq:\n    server:\n      replicas: 3\n",
        "13:17: KKC126 services.rabbitmq.server.replicas: must be 1: RabbitMQ clustering is "
        "not supported by kkc with provider kolla (services.rabbitmq.provider: "
        "rabbitmq-operator runs a RabbitMQ cluster)",
        id="KKC126-rabbitmq-stays",
    ),
    pytest.param(
        OPERATOR,
        "8:3: KKC113 services.mariadb.backup: storage is required with provider "
        "mariadb-operator and backup.enabled: storage.s3 (bucket, endpoint; credentials from "
        "the secret store) or storage.persistentVolumeClaim (size, storageClass); or set "
        "enabled: false",
        id="KKC113-backup-storage",
    ),
    pytest.param(
        OPERATOR + "    backup:\n      storage:\n        s3: {bucket: bkt, endpoint: s3.x.com}\n"
        "        persistentVolumeClaim: {size: 10Gi}\n",
        "11:7: KKC112 services.mariadb.backup.storage: names persistentVolumeClaim and s3: a "
        "Backup has one storage, choose one",
        id="KKC112-two-storages",
    ),
]


@pytest.mark.parametrize(("extra", "expected"), CASES)
def test_input_checks(extra: str, expected: str, site_repo: Path, kkc) -> None:
    add_site(site_repo, "gal", minimal("gal", extra))
    before = snapshot(site_repo)
    result = kkc(site_repo, "build", "gal")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [f"sites/gal/site.yaml:{expected}"]
    assert snapshot(site_repo) == before


def test_galera_of_3_by_default_and_more_if_odd(example_repo: Path) -> None:
    """Replicas default to 3 with the operator (1 with kolla); 5 is accepted."""
    site = load_site(example_repo, HA)
    assert site.get("services.mariadb.server.replicas") is None  # the provider's default
    assert galera.mariadb_resource(site)["spec"]["replicas"] == 3
    assert load_site(example_repo, "site-a").get("services.mariadb.provider") == "kolla"


def test_five_members_build(site_repo: Path, kkc) -> None:
    extra = OPERATOR + "    server:\n      replicas: 5\n" + NO_BACKUP
    add_site(site_repo, "gal", minimal("gal", extra))
    result = kkc(site_repo, "build", "gal")
    assert result.exit_code == 0, result.output
    objects = load_stream(kkc(site_repo, "render", "gal").stdout)
    assert _by_kind(objects, "MariaDB")["mariadb"]["spec"]["replicas"] == 5
    assert "mariadb" not in _by_kind(objects, "StatefulSet")
    assert _by_kind(objects, "Backup") == {}  # backup.enabled: false


def test_the_ha_overlay_selects_the_provider(example_repo: Path) -> None:
    value, origins = load_site(example_repo, HA).explain("services.mariadb.provider")
    assert value == "mariadb-operator"
    assert (origins[0].path, origins[0].layer) == ("overlays/ha/defaults.yaml", "overlay ha")
    # site-a lists the overlay too, and pins the kolla MariaDB it is built with
    value, origins = load_site(example_repo, "site-a").explain("services.mariadb.provider")
    assert (value, origins[0].path) == ("kolla", "sites/site-a/site.yaml")


# ---- the rendered objects ------------------------------------------------------------


def test_mariadb_resource(built_sites) -> None:
    objects = built_sites.rendered(HA)
    mdb = _by_kind(objects, "MariaDB")["mariadb"]
    assert mdb["apiVersion"] == "k8s.mariadb.com/v1alpha1"
    spec = mdb["spec"]
    assert spec["replicas"] == 3
    assert spec["galera"]["enabled"] is True
    assert spec["galera"]["recovery"] == {"enabled": True}
    # the storage site-a-ha (as site-a) configures for services.mariadb.server.storage
    assert (spec["storage"]["size"], spec["storage"]["storageClassName"]) == ("50Gi", "fast-ssd")
    assert spec["rootPasswordSecretKeyRef"] == {"name": "mariadb-secrets", "key": "root-password"}
    assert spec["podDisruptionBudget"] == {"maxUnavailable": 1}
    assert spec["primaryService"] == {"type": "ClusterIP"}
    assert spec["image"] == "docker.io/library/mariadb:11.8.8"
    assert spec["resources"] == {
        "requests": {"cpu": "1", "memory": "4Gi"},
        "limits": {"memory": "6Gi"},
    }
    assert spec["nodeSelector"] == {"openstack-control-plane": "enabled"}
    assert "[mariadb]\n" in spec["myCnf"] and "binlog_format = row\n" in spec["myCnf"]
    # the kolla MariaDB is gone: no StatefulSet, Services or kolla config of it
    assert "mariadb" not in _by_kind(objects, "StatefulSet")
    assert not {"mariadb", "mariadb-headless"} & set(_by_kind(objects, "Service"))
    assert not [n for n in _by_kind(objects, "ConfigMap") if n.startswith("mariadb-kolla")]
    # and site-a keeps it
    kolla = built_sites.rendered("site-a")
    assert _by_kind(kolla, "MariaDB") == {} and "mariadb" in _by_kind(kolla, "StatefulSet")


def test_backup_resource(built_sites) -> None:
    backup = _by_kind(built_sites.rendered(HA), "Backup")["mariadb-backup"]["spec"]
    assert backup["mariaDbRef"] == {"name": "mariadb", "waitForIt": True}
    assert backup["schedule"] == {"cron": "30 1 * * *", "suspend": False}
    assert backup["maxRetention"] == "336h"
    s3 = backup["storage"]["s3"]
    assert (s3["bucket"], s3["endpoint"], s3["prefix"]) == (
        "fra2-openstack-backups",
        "s3.fra2.example.com",
        "site-a-ha/mariadb",
    )


def test_backup_on_a_volume(site_repo: Path, kkc) -> None:
    extra = OPERATOR + "    backup:\n      storage:\n        persistentVolumeClaim:\n"
    extra += "          size: 200Gi\n          storageClass: backup\n"
    add_site(site_repo, "gal", minimal("gal", extra))
    result = kkc(site_repo, "render", "gal")
    assert result.exit_code == 0, result.output
    objects = load_stream(result.stdout)
    storage = _by_kind(objects, "Backup")["mariadb-backup"]["spec"]["storage"]
    assert storage == {
        "persistentVolumeClaim": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "200Gi"}},
            "storageClassName": "backup",
        }
    }
    assert "mariadb-backup-s3" not in _by_kind(objects, "ExternalSecret")


def test_every_client_connects_to_the_primary(built_sites) -> None:
    """Every database URL and every database Job of the Galera site names mariadb-primary;
    site-a's the kolla Service mariadb."""
    for site, host in ((HA, "mariadb-primary"), ("site-a", "mariadb")):
        objects = built_sites.rendered(site)
        urls = [
            url
            for es in _by_kind(objects, "ExternalSecret").values()
            for text in ((es["spec"]["target"].get("template") or {}).get("data") or {}).values()
            for url in re.findall(r"mysql\+pymysql://[^\n]+", text)
        ]
        assert len(urls) >= 8, urls  # keystone, glance, placement, nova (2), neutron, ...
        assert {u.rsplit("@", 1)[1].split("/")[0] for u in urls} == {f"{host}:3306"}
        hosts = {
            env["value"]
            for job in _by_kind(objects, "Job").values()
            for c in job["spec"]["template"]["spec"].get("initContainers") or []
            for env in c.get("env") or []
            if env["name"] == "DB_HOST"
        }
        assert hosts == {host}


def test_every_custom_resource_passes_its_crd_schema(built_sites) -> None:
    """Strictly, as kkc build validates them; an unknown field is KKC302 (the test can fail)."""
    objects = built_sites.rendered(HA)
    custom = [o for o in objects if o["apiVersion"].startswith("k8s.mariadb.com/")]
    assert sorted(o["kind"] for o in custom) == ["Backup", "MariaDB"]
    assert validate.validate_objects(custom, "1.31", None, "x") == ([], [])
    for obj in custom:
        bad = copy.deepcopy(obj)
        bad["spec"]["replica"] = 3
        problems, _ = validate.validate_objects([bad], "1.31", None, "x")
        assert [p.code for p in problems] == ["KKC302"], problems


def test_the_secret_keys_the_resources_read_exist(built_sites, example_repo: Path) -> None:
    """Referential integrity: each *SecretKeyRef of a k8s.mariadb.com resource is a key of a
    rendered ExternalSecret; KKC307 when one is not."""
    objects = built_sites.rendered(HA)
    refs = {
        (ref.get("name"), ref.get("key"))
        for o in objects
        if o["apiVersion"].startswith("k8s.mariadb.com/")
        for ref in _secret_key_refs(o["spec"])
    }
    assert refs == {
        ("mariadb-secrets", "root-password"),
        ("mariadb-backup-s3", "access-key-id"),
        ("mariadb-backup-s3", "secret-access-key"),
    }
    keys = {
        (es["spec"]["target"]["name"], d["secretKey"])
        for es in _by_kind(objects, "ExternalSecret").values()
        for d in es["spec"]["data"]
    }
    assert refs <= keys
    site = load_site(example_repo, HA)
    outputs = compute(site)
    assert lint.check_references(site, objects, "x", outputs) == []
    broken = copy.deepcopy(objects)
    mdb = next(o for o in broken if o["kind"] == "MariaDB")
    mdb["spec"]["rootPasswordSecretKeyRef"]["key"] = "root-pasword"
    backup = next(o for o in broken if o["kind"] == "Backup")
    backup["spec"]["mariaDbRef"]["name"] = "mariadb-galera"
    messages = [p.message for p in lint.check_references(site, broken, "x", outputs)]
    assert messages == [
        "Backup/mariadb-backup references MariaDB 'mariadb-galera', which is neither in the "
        "output nor provided outside it",
        "MariaDB/mariadb references key 'root-pasword' of Secret 'mariadb-secrets', which has "
        "no such key",
    ]


def _secret_key_refs(node):
    if isinstance(node, dict):
        for field, value in node.items():
            if field.endswith("SecretKeyRef"):
                yield value
            else:
                yield from _secret_key_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _secret_key_refs(item)


def test_secrets_lists_the_backup_credentials(built_sites, kkc) -> None:
    result = kkc(built_sites.root, "secrets", HA, "-o", "json")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "mariadb_backup_s3_access_key_id" in text
    assert "mariadb_backup_s3_secret_access_key" in text


def test_the_mariadb_image_is_judged_by_the_operators_rule(built_sites, example_repo) -> None:
    assert lint.operator_image_problem("docker.io/library/mariadb:11.8.8") is None
    assert lint.operator_image_problem("registry.example.com/mirror/mariadb:11.4.5") is None
    for image in ("quay.io/openstack.kolla/mariadb-server:2025.1-rocky-9", "mariadb:lts"):
        assert lint.operator_image_problem(image).startswith(f'image "{image}" is not an')
    objects = built_sites.rendered(HA)
    site = load_site(example_repo, HA)
    assert lint.check_kolla(site, objects, "x")[0] == []
    mdb = next(o for o in objects if o["kind"] == "MariaDB")
    mdb["spec"]["image"] = "quay.io/openstack.kolla/mariadb-server:2025.1-rocky-9"
    [problem] = lint.check_kolla(site, objects, "x")[0]
    assert problem.code == "KKC308"
    assert problem.message.startswith(
        'MariaDB/mariadb: image "quay.io/openstack.kolla/mariadb-server:2025.1-rocky-9" is '
        "not an official MariaDB image with a version tag"
    )


def test_network_policy_admits_the_galera_members_and_the_operator(built_sites) -> None:
    policy = _by_kind(built_sites.rendered(HA), "NetworkPolicy")["mariadb"]["spec"]
    assert policy["podSelector"] == {
        "matchLabels": {
            "app.kubernetes.io/name": "mariadb",
            "app.kubernetes.io/component": "server",
        }
    }
    rules = [(r["from"], [p["port"] for p in r["ports"]]) for r in policy["ingress"]]
    clients, members, operator = rules
    names = clients[0][0]["podSelector"]["matchExpressions"][0]["values"]
    assert "mariadb-backup" in names and "keystone" in names
    assert clients[1] == [3306]
    assert members == (
        [{"podSelector": {"matchLabels": galera.POD_LABELS}}],
        [3306, 4444, 4567, 4568],
    )
    assert operator == (
        [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "mariadb-operator"}
                }
            }
        ],
        [3306, 5555],
    )


# ---- the controllers -----------------------------------------------------------------


def test_argo_cd_bootstrap_names_the_operator_and_its_health_check(built_sites, kkc) -> None:
    result = kkc(built_sites.root, "bootstrap", HA)
    assert result.exit_code == 0, result.output
    notes = result.stderr.splitlines()
    assert notes[0] == (
        "note: install first: mariadb-operator 26.6.0 (services.mariadb.provider): CRDs "
        "k8s.mariadb.com/v1alpha1 MariaDB and Backup, validated against mariadb-operator's "
        "26.6.0 CRDs; it must watch namespace openstack"
    )
    assert notes[-1].startswith(
        "note: Argo CD waits for the operators' resources with the health checks in the "
        "header of this stream (argocd-cm data keys "
        "resource.customizations.health.k8s.mariadb.com_MariaDB, "
    )
    head = [line[2:] for line in result.stdout.splitlines() if line.startswith("# ")]
    start = head.index(
        "Argo CD: stage infra waits for the operators' resources to be ready with these"
    )
    snippet = yaml.safe_load("\n".join(head[start + 2 :]) + "\n")
    assert snippet[gitops.ARGO_MARIADB_HEALTH_KEY] == gitops.ARGO_MARIADB_HEALTH
    assert snippet == dict(gitops.argo_health_checks(load_site(built_sites.root, HA)))
    assert (built_sites.root / f"deploy/{HA}/bootstrap.yaml").read_text() == result.stdout
    plain = kkc(built_sites.root, "bootstrap", "site-a")
    assert plain.stderr == "" and "install first" not in plain.stdout


def test_flux_waits_for_the_ready_condition(site_repo: Path, kkc) -> None:
    """On Flux the infra stage's Kustomization evaluates the MariaDB's Ready condition
    (healthCheckExprs: `wait: true` would ignore healthChecks), valid against the CRD."""
    set_engine(site_repo, HA, "flux")
    result = kkc(site_repo, "bootstrap", HA, "-o", "json")
    assert result.exit_code == 0, result.output
    kustomizations = {
        o["metadata"]["name"]: o["spec"]
        for o in json.loads(result.stdout)["items"]
        if o["kind"] == "Kustomization"
    }
    infra = kustomizations.pop(f"{HA}-infra")
    assert infra["wait"] is True
    # the MariaDB, then the RabbitMQ operators' resources (test_rabbitmq_operator)
    assert infra["healthCheckExprs"] == [gitops.FLUX_MARIADB_HEALTH, *gitops.FLUX_RABBITMQ_HEALTH]
    assert gitops.FLUX_MARIADB_HEALTH["apiVersion"] == "k8s.mariadb.com/v1alpha1"
    assert (
        "status.conditions.exists(e, e.type == 'Ready' && e.status == 'True')"
        in (gitops.FLUX_MARIADB_HEALTH["current"])
    )
    assert kustomizations and not [k for k, s in kustomizations.items() if "healthCheckExprs" in s]
    # site-b (Flux, kolla) has none
    objects = json.loads(kkc(site_repo, "bootstrap", "site-b", "-o", "json").stdout)["items"]
    assert not [o for o in objects if "healthCheckExprs" in o.get("spec", {})]


def test_doctor_lists_the_operator(kkc, tmp_path: Path) -> None:
    result = kkc(tmp_path, "doctor", "-o", "json")
    assert result.exit_code == 0, result.output
    operator = json.loads(result.stdout)["operators"][0]
    commit = validate.embedded_index()["controllers"]["mariadb-operator_mariadb-operator"]["commit"]
    assert operator["name"] == "mariadb-operator"
    assert operator["release"] == "26.6.0"
    assert operator["commit"] == commit
    assert "k8s.mariadb.com/v1alpha1 MariaDB" in operator["crds"]
    text = kkc(tmp_path, "doctor").stdout.splitlines()
    assert (
        "  mariadb-operator 26.6.0: needed with services.mariadb.provider: mariadb-operator; "
        f"kkc validates k8s.mariadb.com/v1alpha1 against mariadb-operator/mariadb-operator@"
        f"{commit[:12]}"
    ) in text


# ---- day two: switching the provider of a built site ---------------------------------


def _switch_to_galera(root: Path) -> int:
    path = root / "sites/site-k/site.yaml"
    added = (
        "  mariadb:\n    provider: mariadb-operator\n    backup:\n      storage:\n"
        "        persistentVolumeClaim: {size: 30Gi}\n"
    )
    path.write_text(path.read_text().replace("services:\n", "services:\n" + added, 1))
    return path.read_text().splitlines().index("    provider: mariadb-operator") + 1


SWITCH = (
    "KKC159 services.mariadb.provider of a built site changes from kolla to mariadb-operator: "
    "the mariadb-operator MariaDB starts on new, empty volumes and the kolla one is pruned, so "
    "every OpenStack database is gone on the next sync; move the data with a dump and restore "
    "(docs/backup-restore.md#moving-a-built-site-from-kolla-to-mariadb-operator), then run "
    "`kkc build` with --allow-destructive (see docs/review.md#day-two-safety)"
)


def test_a_provider_switch_is_refused_unless_allowed(small_site_repo: Path, kkc) -> None:
    assert kkc(small_site_repo, "build", "site-k", "--commit").exit_code == 0
    line = _switch_to_galera(small_site_repo)
    before = snapshot(small_site_repo)
    result = kkc(small_site_repo, "build", "site-k", "--commit")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[0] == f"sites/site-k/site.yaml:{line}:5: {SWITCH}"
    assert snapshot(small_site_repo) == before

    diff = kkc(small_site_repo, "diff", "site-k")
    assert diff.stdout.splitlines()[:2] == [
        "DESTRUCTIVE: site-k: `kkc build` refuses this without --allow-destructive",
        f"  sites/site-k/site.yaml:{line}:5: {SWITCH}",
    ]

    result = kkc(small_site_repo, "build", "site-k", "--allow-destructive")
    assert result.exit_code == 0, result.output
    assert f"warning: sites/site-k/site.yaml:{line}:5: {SWITCH}" in result.stderr.splitlines()
    infra = small_site_repo / "deploy/site-k/stages/infra"
    assert (infra / "objects/mariadb-mariadb.yaml").is_file()
    assert not (infra / "patches/mariadb-statefulset.yaml").exists()


def test_provider_switch_both_ways_and_not_for_a_new_site() -> None:
    kolla = {("apps", "StatefulSet", "ns", "mariadb"): {}}
    operator = {("k8s.mariadb.com", "MariaDB", "ns", "mariadb"): {}}
    site = _FakeSite()
    assert safety.mariadb_provider(kolla) == "kolla"
    assert safety.mariadb_provider(operator) == "mariadb-operator"
    assert safety.mariadb_provider({}) is None
    assert [p.code for p in safety.provider_switch(kolla, operator, site, "w")] == ["KKC159"]
    back = safety.provider_switch(operator, kolla, site, "w")
    assert "changes from mariadb-operator to kolla" in back[0].message
    assert safety.provider_switch({}, operator, site, "w") == []  # never built
    assert safety.provider_switch(kolla, {}, site, "w") == []  # mariadb disabled: not this
    assert safety.provider_switch(kolla, kolla, site, "w") == []


class _FakeSite:
    def explain_at(self, _path):
        return None, []
