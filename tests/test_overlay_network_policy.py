"""Overlay network-policy: default-deny ingress plus one allow policy per server, in the
server's stage, admitting exactly the pods (and, for the hostNetwork node agents, the node
CIDRs) that need it; the site must list its node CIDRs; site-a builds with it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from conftest import Built, make_repo
from helpers import add_site, doc, minimal, tree

NAME, COMP = "app.kubernetes.io/name", "app.kubernetes.io/component"
NODES = {"ipBlock": {"cidr": "10.20.0.0/22"}}
INGRESS_NS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("netpol") / "repo")
    # keystone only: no node agents, so no node CIDRs needed
    add_site(root, "lean", minimal("lean", "overlays: [network-policy]\n"))
    return root


@pytest.fixture
def files(example_trees: Mapping) -> Mapping[str, bytes]:
    return example_trees["site-a"]


def policy(files: dict[str, bytes], stage: str, name: str) -> dict:
    return doc(files, f"stages/{stage}/objects/{name}-networkpolicy.yaml")["spec"]


def peers_and_ports(spec: dict) -> list[tuple[list, list]]:
    return [(r["from"], [p["port"] for p in r["ports"]]) for r in spec["ingress"]]


def test_default_deny_selects_every_pod_in_the_infra_stage(files: dict[str, bytes]) -> None:
    assert policy(files, "infra", "default-deny-ingress") == {
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": [],
    }


def test_mariadb_admits_exactly_the_services_with_databases_and_the_nodes(
    files: dict[str, bytes],
) -> None:
    spec = policy(files, "infra", "mariadb")
    assert spec["podSelector"] == {"matchLabels": {NAME: "mariadb", COMP: "server"}}
    with_db = ["cinder", "glance", "heat", "keystone", "neutron", "nova", "placement"]
    pods = {
        "podSelector": {"matchExpressions": [{"key": NAME, "operator": "In", "values": with_db}]}
    }
    # cinder-volume (hostNetwork) talks to MariaDB from the node's address
    assert peers_and_ports(spec) == [([pods, NODES], [3306])]


def test_rabbitmq_and_memcached_admit_their_users(files: dict[str, bytes]) -> None:
    rabbit = policy(files, "infra", "rabbitmq")
    users = rabbit["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"]
    assert users == ["cinder", "glance", "heat", "neutron", "nova"]
    assert peers_and_ports(rabbit)[0][1] == [5672]
    assert rabbit["ingress"][0]["from"][1:] == [NODES]  # nova-compute, cinder-volume
    mem = policy(files, "infra", "memcached")
    users = mem["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"]
    assert users == [
        "cinder",
        "glance",
        "heat",
        "horizon",
        "keystone",
        "neutron",
        "nova",
        "placement",
    ]
    assert peers_and_ports(mem)[0][1] == [11211]
    assert mem["ingress"][0]["from"][1:] == []  # nova-compute has no token cache


def test_ovn_databases_admit_neutron_server_northd_and_for_sb_the_nodes(
    files: dict[str, bytes],
) -> None:
    clients = {
        "podSelector": {
            "matchLabels": {NAME: "neutron"},
            "matchExpressions": [
                {"key": COMP, "operator": "In", "values": ["ovnNorthd", "server"]}
            ],
        }
    }
    # site-a's databases are RAFT clusters (overlay ha): their members reach each other
    # on the RAFT port only
    members = {"podSelector": {"matchLabels": {NAME: "neutron", COMP: "ovnNbDb"}}}
    assert peers_and_ports(policy(files, "infra", "ovn-nb-db")) == [
        ([clients], [6641]),
        ([members], [6643]),
    ]
    members = {"podSelector": {"matchLabels": {NAME: "neutron", COMP: "ovnSbDb"}}}
    assert peers_and_ports(policy(files, "infra", "ovn-sb-db")) == [
        ([clients, NODES], [6642]),
        ([members], [6644]),
    ]


def test_apis_admit_the_namespace_and_the_ingress_controller_in_their_stage(
    files: dict[str, bytes],
) -> None:
    keystone = policy(files, "identity", "keystone-api")
    assert keystone["podSelector"] == {"matchLabels": {NAME: "keystone", COMP: "api"}}
    assert peers_and_ports(keystone) == [([{"podSelector": {}}, INGRESS_NS, NODES], [5000])]
    assert peers_and_ports(policy(files, "services", "heat-api-cfn")) == [
        ([{"podSelector": {}}, INGRESS_NS], [8000])
    ]
    assert peers_and_ports(policy(files, "services", "horizon")) == [
        ([{"podSelector": {}}, INGRESS_NS], [80])
    ]
    # only the OVN metadata agent (hostNetwork) reaches nova-metadata
    assert peers_and_ports(policy(files, "services", "nova-metadata")) == [([NODES], [8775])]
    names = sorted(
        p.split("/")[-1].removesuffix("-networkpolicy.yaml")
        for p in files
        if p.startswith("stages/services/objects/") and p.endswith("-networkpolicy.yaml")
    )
    assert names == [
        "cinder-api",
        "glance-api",
        "heat-api",
        "heat-api-cfn",
        "horizon",
        "neutron-server",
        "nova-api",
        "nova-metadata",
        "nova-novncproxy",
        "placement-api",
        "prometheus-blackbox-exporter-metrics",
    ]


def test_prometheus_namespace_reaches_the_metrics_ports(files: dict[str, bytes]) -> None:
    prom = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    assert peers_and_ports(policy(files, "infra", "memcached-metrics")) == [([prom], [9150])]
    assert peers_and_ports(policy(files, "infra", "rabbitmq-metrics")) == [([prom], [15692])]


def test_a_site_without_node_agents_needs_no_node_cidrs(repo: Path) -> None:
    files = tree(repo, "lean")
    assert policy(files, "identity", "keystone-api")["ingress"][0]["from"] == [
        {"podSelector": {}},
        INGRESS_NS,
    ]
    assert peers_and_ports(policy(files, "infra", "mariadb")) == [
        (
            [
                {
                    "podSelector": {
                        "matchExpressions": [
                            {"key": NAME, "operator": "In", "values": ["keystone"]}
                        ]
                    }
                }
            ],
            [3306],
        )
    ]


def test_site_a_builds_and_validates_with_the_overlay(built_sites: Built) -> None:
    result = built_sites.builds["site-a"]
    assert result.exit_code == 0, result.output
    site_repo = built_sites.root
    assert (site_repo / "deploy/site-a/stages/infra/objects/mariadb-networkpolicy.yaml").is_file()


def _without_node_cidrs(root: Path) -> None:
    path = root / "sites/site-a/site.yaml"
    text = path.read_text()
    block = (
        "  # control-plane and compute nodes (the node agents run with hostNetwork)\n"
        '  nodeCIDRs: ["10.20.0.0/22"]\n'
    )
    assert block in text
    path.write_text(text.replace(block, "  ingressNamespace: ingress-nginx\n"))


def test_node_cidrs_are_required_when_node_agents_run(site_repo: Path, kkc) -> None:
    _without_node_cidrs(site_repo)
    result = kkc(site_repo, "build", "site-a")
    assert result.exit_code == 2
    line = next(
        i
        for i, t in enumerate((site_repo / "sites/site-a/site.yaml").read_text().splitlines(), 1)
        if t.startswith("networkPolicy:")
    )
    assert (
        f"sites/site-a/site.yaml:{line}:1: KKC113 networkPolicy.nodeCIDRs: network policies "
        "are on and nova-compute, cinder-volume, ovn-controller, neutron-ovn-metadata-agent "
        "run with hostNetwork: list the nodes' address ranges so the servers they reach can "
        "admit them"
    ) in result.output
    assert not (site_repo / "deploy").exists()


def test_a_node_cidr_must_be_a_network(site_repo: Path, kkc) -> None:
    path = site_repo / "sites/site-a/site.yaml"
    path.write_text(path.read_text().replace('"10.20.0.0/22"', '"10.20.0.1/22"'))
    result = kkc(site_repo, "build", "site-a")
    assert result.exit_code == 2
    assert (
        'KKC112 networkPolicy.nodeCIDRs[0]: "10.20.0.1/22" is not a network '
        "(10.20.0.1/22 has host bits set)"
    ) in result.output
    assert not (site_repo / "deploy").exists()
