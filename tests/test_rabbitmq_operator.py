"""services.rabbitmq.provider: rabbitmq-operator (issue 17): a RabbitmqCluster and per
service a User, Vhost and Permission instead of the kolla StatefulSet; each service on its
own user and vhost with credentials from the store; the quorum queue options of the
release; referential integrity of the topology resources (KKC307), the image rule
(KKC308), the input check (KKC188), the provider switch (KKC159) and the RabbitMQ ladder of
the cluster's image (KKC195)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from conftest import snapshot
from helpers import add_site, minimal
from kkc import catalog, gitops, lint, safety, upgradepath, validate
from kkc.outputs import compute
from kkc.services import common, rabbitmq_cluster
from kkc.site import load_site

HA = "site-a-ha"
CLIENTS = ["cinder", "glance", "heat", "neutron", "nova"]  # site-a-ha's users of RabbitMQ
RABBITMQ_API = "rabbitmq.com/v1beta1"


def _by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _templates(objects: list[dict]) -> dict[str, dict[str, str]]:
    """ExternalSecret -> its template data (key -> Go template)."""
    return {
        name: (es["spec"]["target"].get("template") or {}).get("data") or {}
        for name, es in _by_kind(objects, "ExternalSecret").items()
    }


def _store_keys(es: dict) -> dict[str, str]:
    """secretKey -> the store entry (without the site's key prefix) of an ExternalSecret."""
    return {d["secretKey"]: d["remoteRef"]["key"].rsplit("/", 1)[1] for d in es["spec"]["data"]}


# ---- input ---------------------------------------------------------------------------


def test_even_replicas_are_refused(small_site_repo: Path, kkc) -> None:
    extra = "services:\n  rabbitmq:\n    provider: rabbitmq-operator\n    server:\n"
    add_site(small_site_repo, "rmq", minimal("rmq", extra + "      replicas: 4\n"))
    before = snapshot(small_site_repo)
    result = kkc(small_site_repo, "build", "rmq")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "sites/rmq/site.yaml:11:17: KKC188 services.rabbitmq.server.replicas: must be odd "
        "with provider rabbitmq-operator: quorum queues keep a majority of an odd number of "
        "members only (got 4; 3 is the default)"
    ]
    assert snapshot(small_site_repo) == before


def test_the_ha_overlay_selects_the_provider_and_3_members(example_repo: Path) -> None:
    site = load_site(example_repo, HA)
    value, origins = site.explain("services.rabbitmq.provider")
    assert (value, origins[0].path) == ("rabbitmq-operator", "overlays/ha/defaults.yaml")
    assert rabbitmq_cluster.cluster_resource(site)["spec"]["replicas"] == 3
    assert load_site(example_repo, "site-a").get("services.rabbitmq.provider") == "kolla"


# ---- the rendered objects ------------------------------------------------------------


def test_the_cluster_resource(built_sites) -> None:
    objects = built_sites.rendered(HA)
    rmq = _by_kind(objects, "RabbitmqCluster")["rabbitmq"]
    assert rmq["apiVersion"] == RABBITMQ_API
    spec = rmq["spec"]
    assert spec["replicas"] == 3
    assert spec["image"] == "docker.io/library/rabbitmq:4.3.4-management"
    assert spec["persistence"] == {"storage": "5Gi", "storageClassName": "fast-ssd"}
    assert spec["autoEnableAllFeatureFlags"] is True
    assert "cluster_partition_handling = pause_minority\n" in spec["rabbitmq"]["additionalConfig"]
    [anti] = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti == {
        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "rabbitmq"}},
        "topologyKey": "kubernetes.io/hostname",
    }
    pod = spec["override"]["statefulSet"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"openstack-control-plane": "enabled"}
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert spec["tolerations"][0]["key"] == "node-role.kubernetes.io/control-plane"
    pdb = _by_kind(objects, "PodDisruptionBudget")["rabbitmq"]["spec"]
    assert pdb == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "rabbitmq"}},
    }
    # the kolla RabbitMQ is gone: no StatefulSet, Services, config or Secret of it
    assert "rabbitmq" not in _by_kind(objects, "StatefulSet")
    assert not {"rabbitmq", "rabbitmq-headless"} & set(_by_kind(objects, "Service"))
    assert "rabbitmq-kolla" not in _by_kind(objects, "ConfigMap")
    assert "rabbitmq-secrets" not in _by_kind(objects, "ExternalSecret")
    # and site-a keeps it
    kolla = built_sites.rendered("site-a")
    assert _by_kind(kolla, "RabbitmqCluster") == {} and "rabbitmq" in _by_kind(kolla, "StatefulSet")


def test_each_service_has_its_own_user_and_vhost(built_sites) -> None:
    objects = built_sites.rendered(HA)
    for kind in ("User", "Vhost", "Permission"):
        assert sorted(_by_kind(objects, kind)) == [f"rabbitmq-{s}" for s in CLIENTS], kind
    secrets = _by_kind(objects, "ExternalSecret")
    templates = _templates(objects)
    for svc in CLIENTS:
        vhost = _by_kind(objects, "Vhost")[f"rabbitmq-{svc}"]["spec"]
        assert (vhost["name"], vhost["defaultQueueType"]) == (svc, "quorum")
        permission = _by_kind(objects, "Permission")[f"rabbitmq-{svc}"]["spec"]
        assert (permission["vhost"], permission["userReference"]) == (
            svc,
            {"name": f"rabbitmq-{svc}"},
        )
        user = _by_kind(objects, "User")[f"rabbitmq-{svc}"]["spec"]
        assert user["importCredentialsSecret"] == {"name": f"rabbitmq-user-{svc}"}
        # the User's Secret and the service's own read one store entry
        assert _store_keys(secrets[f"rabbitmq-user-{svc}"]) == {
            "password": f"{svc}_rabbitmq_password"
        }
        assert templates[f"rabbitmq-user-{svc}"] == {"username": svc}
        assert _store_keys(secrets[f"{svc}-secrets"])["rabbitmq-password"] == (
            f"{svc}_rabbitmq_password"
        )
        urls = {
            url
            for text in templates[f"{svc}-secrets"].values()
            for url in re.findall(r"transport_url = (.+)", text)
        }
        assert urls == {
            f'rabbit://{svc}:{{{{ index . "rabbitmq-password" | urlquery }}}}@rabbitmq:5672/{svc}'
        }, svc
    # site-a: the one user openstack on vhost /
    kolla = _templates(built_sites.rendered("site-a"))
    assert common.TRANSPORT_URL in kolla["nova-secrets"]["nova.conf"]
    assert "rabbitmq-user-nova" not in kolla


def test_quorum_queue_options_only_with_the_operator(built_sites) -> None:
    def rabbit_section(objects: list[dict], config_map: str, key: str) -> str:
        [text] = [  # the ConfigMap's name has kustomize's hash suffix
            o["data"][key]
            for name, o in _by_kind(objects, "ConfigMap").items()
            if name.rsplit("-", 1)[0] == config_map
        ]
        return text.split("[oslo_messaging_rabbit]\n", 1)[1].split("\n\n", 1)[0]

    ha = rabbit_section(built_sites.rendered(HA), "nova-api-kolla", "nova.conf")
    assert ha.splitlines() == [
        "rabbit_quorum_queue = true",
        "rabbit_transient_quorum_queue = true",
        "rabbit_stream_fanout = true",
        "use_queue_manager = true",
    ]
    kolla = rabbit_section(built_sites.rendered("site-a"), "nova-api-kolla", "nova.conf")
    assert kolla.splitlines() == ["rabbit_quorum_queue = true"]


def test_quorum_options_follow_the_release_catalog(
    example_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = load_site(example_repo, HA)
    assert common.quorum_options(site, "nova") == common.QUORUM_OPTIONS
    assert common.quorum_options(site, "keystone") == {}  # no RabbitMQ user
    real = catalog.load

    class Without:
        def __init__(self, cat):
            self.cat = cat

        def lookup(self, section, option, **kw):
            return None if option == "rabbit_stream_fanout" else self.cat.lookup(section, option)

    monkeypatch.setattr(catalog, "load", lambda r, f: Without(real(r, f)))
    assert "rabbit_stream_fanout" not in common.quorum_options(site, "nova")
    assert "use_queue_manager" in common.quorum_options(site, "nova")


def test_every_rabbitmq_resource_passes_its_crd_schema(built_sites) -> None:
    custom = [o for o in built_sites.rendered(HA) if o["apiVersion"] == RABBITMQ_API]
    assert sorted({o["kind"] for o in custom}) == ["Permission", "RabbitmqCluster", "User", "Vhost"]
    assert validate.validate_objects(custom, "1.31", None, "x") == ([], [])
    for kind in ("RabbitmqCluster", "User", "Vhost", "Permission"):
        bad = copy.deepcopy(next(o for o in custom if o["kind"] == kind))
        bad["spec"]["replica"] = 3
        problems, _ = validate.validate_objects([bad], "1.31", None, "x")
        assert [p.code for p in problems] == ["KKC302"], (kind, problems)


def test_the_topology_references_resolve(built_sites, example_repo: Path) -> None:
    """KKC307: users -> credentials Secret and its keys, permissions -> users and vhosts,
    everything -> the RabbitmqCluster."""
    objects = built_sites.rendered(HA)
    site = load_site(example_repo, HA)
    outputs = compute(site)
    assert lint.check_references(site, objects, "x", outputs) == []
    broken = copy.deepcopy(objects)
    rabbitmq = {(o["kind"], o["metadata"]["name"]): o for o in broken}
    rabbitmq[("User", "rabbitmq-nova")]["spec"]["importCredentialsSecret"]["name"] = "nova-rmq"
    rabbitmq[("Permission", "rabbitmq-glance")]["spec"]["vhost"] = "glance-v2"
    rabbitmq[("Permission", "rabbitmq-heat")]["spec"]["userReference"]["name"] = "heat"
    rabbitmq[("Vhost", "rabbitmq-cinder")]["spec"]["rabbitmqClusterReference"]["name"] = "rmq"
    messages = [p.message for p in lint.check_references(site, broken, "x", outputs)]
    assert messages == [
        "Permission/rabbitmq-heat references User 'heat', which is neither in the output nor "
        "provided outside it",
        "User/rabbitmq-nova references Secret 'nova-rmq', which is neither in the output nor "
        "provided outside it",
        "Vhost/rabbitmq-cinder references RabbitmqCluster 'rmq', which is neither in the output "
        "nor provided outside it",
        "Permission/rabbitmq-cinder references vhost 'cinder', which no Vhost of the output "
        "creates on its cluster",
        "Permission/rabbitmq-glance references vhost 'glance-v2', which no Vhost of the output "
        "creates on its cluster",
    ]


def test_the_image_is_judged_by_the_operators_rule(built_sites, example_repo: Path) -> None:
    assert lint.rabbitmq_image_problem("docker.io/library/rabbitmq:4.3.4-management") is None
    assert lint.rabbitmq_image_problem("mirror.example.com/rabbitmq:4.2") is None
    for image in ("quay.io/openstack.kolla/rabbitmq:2025.1-rocky-9", "rabbitmq:3.13.7"):
        assert lint.rabbitmq_image_problem(image).startswith(f'image "{image}" is not an')
    objects = built_sites.rendered(HA)
    site = load_site(example_repo, HA)
    assert lint.check_kolla(site, objects, "x")[0] == []
    rmq = next(o for o in objects if o["kind"] == "RabbitmqCluster")
    rmq["spec"]["image"] = "quay.io/openstack.kolla/rabbitmq:2025.1-rocky-9"
    [problem] = lint.check_kolla(site, objects, "x")[0]
    assert problem.code == "KKC308"
    assert problem.message.startswith(
        'RabbitmqCluster/rabbitmq: image "quay.io/openstack.kolla/rabbitmq:2025.1-rocky-9" is '
        "not an official RabbitMQ 4 image with a version tag"
    )


def test_network_policy_and_pod_monitor_select_the_operators_pods(built_sites) -> None:
    objects = built_sites.rendered(HA)
    labels = {"app.kubernetes.io/name": "rabbitmq", "app.kubernetes.io/component": "rabbitmq"}
    policy = _by_kind(objects, "NetworkPolicy")["rabbitmq"]["spec"]
    assert policy["podSelector"] == {"matchLabels": labels}
    rules = [(r["from"], [p["port"] for p in r["ports"]]) for r in policy["ingress"]]
    clients, members, operator = rules
    assert clients[0][0]["podSelector"]["matchExpressions"][0]["values"] == CLIENTS
    assert clients[1] == [5672]
    assert members == (
        [{"podSelector": {"matchLabels": labels}}],
        [4369, 25672, *range(35672, 35683)],
    )
    assert operator == (
        [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "rabbitmq-system"}
                }
            }
        ],
        [15672],
    )
    assert _by_kind(objects, "PodMonitor")["rabbitmq"]["spec"]["selector"] == {
        "matchLabels": labels
    }
    assert _by_kind(objects, "NetworkPolicy")["rabbitmq-metrics"]["spec"]["podSelector"] == {
        "matchLabels": labels
    }


# ---- the controllers -----------------------------------------------------------------


def test_the_controllers_wait_for_the_cluster_and_the_topology(example_repo: Path) -> None:
    """Flux: every rabbitmq.com kind of the output has a healthCheckExpr (the Kustomization
    validates against its CRD, test_mariadb_operator), current on the operators' own
    conditions and never failed on a transient False; Argo CD: a health check each."""
    flux = {e["kind"]: e for e in gitops.FLUX_RABBITMQ_HEALTH}
    assert sorted(flux) == ["Permission", "RabbitmqCluster", "User", "Vhost"]
    assert not [e for e in flux.values() if "failed" in e]
    cluster = flux["RabbitmqCluster"]["current"]
    assert "e.type == 'AllReplicasReady' && e.status == 'True'" in cluster
    assert "e.type == 'ClusterAvailable' && e.status == 'True'" in cluster
    checks = dict(gitops.argo_health_checks(load_site(example_repo, HA)))
    assert sorted(k.rsplit(".", 1)[1] for k in checks) == [
        "com_MariaDB",
        "com_Permission",
        "com_RabbitmqCluster",
        "com_User",
        "com_Vhost",
    ]
    assert (
        'ready["AllReplicasReady"] == "True" and ready["ClusterAvailable"] == "True"'
        in (checks[gitops.ARGO_RABBITMQ_HEALTH_KEY])
    )
    assert gitops.argo_health_checks(load_site(example_repo, "site-a")) == []


# ---- day two -------------------------------------------------------------------------


def test_a_provider_switch_is_refused_unless_allowed(small_site_repo: Path, kkc) -> None:
    assert kkc(small_site_repo, "build", "site-k", "--commit").exit_code == 0
    path = small_site_repo / "sites/site-k/site.yaml"
    added = "  rabbitmq:\n    provider: rabbitmq-operator\n"
    path.write_text(path.read_text().replace("services:\n", "services:\n" + added, 1))
    line = path.read_text().splitlines().index("    provider: rabbitmq-operator") + 1
    before = snapshot(small_site_repo)
    result = kkc(small_site_repo, "build", "site-k", "--commit")
    assert result.exit_code == 2, result.output
    assert (
        f"sites/site-k/site.yaml:{line}:5: KKC159 services.rabbitmq.provider of a built "
        "site changes from kolla to rabbitmq-operator: the rabbitmq-operator RabbitMQ starts "
        "with no queues and the kolla one is pruned, so every message still queued is lost "
        "and every service reconnects as another user; stop the OpenStack services first "
        "(docs/bases.md#moving-a-built-site-to-rabbitmq-operator), then run `kkc build` with "
        "--allow-destructive (see docs/review.md#day-two-safety)"
    ) in result.stderr.splitlines()
    assert snapshot(small_site_repo) == before
    result = kkc(small_site_repo, "build", "site-k", "--allow-destructive")
    assert result.exit_code == 0, result.output
    infra = small_site_repo / "deploy/site-k/stages/infra"
    assert (infra / "objects/rabbitmq-rabbitmqcluster.yaml").is_file()


def _cluster(image: str) -> dict:
    return {("rabbitmq.com", "RabbitmqCluster", "ns", "rabbitmq"): {"spec": {"image": image}}}


@pytest.mark.parametrize(
    ("old", "new", "refused"),
    [
        ("rabbitmq:4.2.1-management", "rabbitmq:4.3.4-management", None),
        ("rabbitmq:4.0.9", "rabbitmq:4.2.0", None),  # a jump kolla-ansible lists
        ("rabbitmq:4.3.4", "rabbitmq:4.3.5", None),
        ("rabbitmq:4.1.0", "rabbitmq:4.3.4", "outside the allowed ladder"),
        ("rabbitmq:4.3.4", "rabbitmq:4.2.1", "a downgrade"),
    ],
)
def test_the_cluster_image_follows_the_rabbitmq_ladder(old: str, new: str, refused) -> None:
    found = safety.rabbitmq_image_change(_cluster(old), _cluster(new), _FakeSite(), "w")
    if refused is None:
        assert found == []
        return
    [problem] = found
    assert problem.code == upgradepath.RABBITMQ_REFUSED
    assert problem.message.startswith(f"RabbitmqCluster/ns/rabbitmq: spec.image {old} -> {new} ")
    assert refused in problem.message


def test_upgrade_skips_the_kolla_ladder_without_a_kolla_rabbitmq(monkeypatch) -> None:
    facts = upgradepath.facts()
    monkeypatch.setitem(facts.rabbitmq, "2026.1", "4.3")  # 4.0 -> 4.3: not on the ladder
    assert upgradepath.refusal("2025.1", "2026.1")[0] == "KKC195"
    assert upgradepath.refusal("2025.1", "2026.1", kolla_rabbitmq=False) is None


class _FakeSite:
    def explain_at(self, _path):
        return None, []
