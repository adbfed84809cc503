"""Feature ``networkPolicy`` (overlay ``network-policy``): NetworkPolicies that let in
exactly the flows the control plane needs, derived from what the enabled services are.

Ingress only: ``default-deny-ingress`` (stage infra) selects every pod of the namespace;
each allow policy selects the pods of one server and sits in that server's stage. Egress
is not restricted. The node agents (nova-compute, cinder-volume, ovn-controller, the OVN
metadata agent) run with hostNetwork: their connections come from the node's address, so
the servers they reach also admit ``networkPolicy.nodeCIDRs``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..model import REQUIRES, Site
from ..services import ServiceOutput
from ..services.common import keystone_internal
from ..services.horizon import PORT as HORIZON_PORT
from ..services.nova import METADATA_PORT, NOVNCPROXY_PORT
from ..services.ovn import NB_PORT, SB_PORT
from .monitoring import scrape_targets

NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"
NS_NAME = "kubernetes.io/metadata.name"  # set by Kubernetes on every Namespace
MARIADB_PORT = 3306
RABBITMQ_PORT = 5672
MEMCACHED_PORT = 11211

# The hostNetwork agents of a service and the Services (by name) they connect to.
NODE_AGENTS: dict[str, tuple[str, frozenset[str]]] = {
    "nova": (
        "nova-compute",
        frozenset(
            {
                "rabbitmq",
                "keystone-api",
                "placement-api",
                "glance-api",
                "neutron-server",
                "cinder-api",
            }
        ),
    ),
    "cinder": (
        "cinder-volume",
        frozenset({"mariadb", "rabbitmq", "keystone-api", "glance-api", "nova-api"}),
    ),
    "neutron": (
        "ovn-controller, neutron-ovn-metadata-agent",
        frozenset({"ovn-sb-db", "nova-metadata"}),
    ),
}


def needs_nodes(site: Site) -> list[str]:
    """The enabled node agents (their connections come from the nodes' addresses)."""
    return [agents for svc, (agents, _) in NODE_AGENTS.items() if site.enabled(svc)]


def _from_nodes(site: Site, server: str) -> bool:
    return any(site.enabled(svc) and server in reach for svc, (_, reach) in NODE_AGENTS.items())


def _pods(service: str, component: str) -> dict[str, Any]:
    return {"matchLabels": {NAME: service, COMPONENT: component}}


def _names(services: list[str]) -> dict[str, Any]:
    return {"matchExpressions": [{"key": NAME, "operator": "In", "values": sorted(services)}]}


def _namespace(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {NS_NAME: name}}}


def _policy(name: str, pods: dict[str, Any], rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {"podSelector": pods, "policyTypes": ["Ingress"], "ingress": rules},
    }


def _rule(peers: list[dict[str, Any]], *ports: int) -> dict[str, Any]:
    return {"from": peers, "ports": [{"protocol": "TCP", "port": p} for p in ports]}


def _server(
    site: Site, name: str, pods: dict[str, Any], peers: list[dict[str, Any]], port: int
) -> dict[str, Any]:
    """Allow ``peers`` (plus the nodes, when a node agent uses ``name``) to ``port``; no
    peers: no rule (an empty ``from`` would admit everyone)."""
    if _from_nodes(site, name):
        peers = peers + [{"ipBlock": {"cidr": c}} for c in site.get("networkPolicy.nodeCIDRs")]
    return _policy(name, pods, [_rule(peers, port)] if peers else [])


def _apis(site: Site, services: list[ServiceOutput]) -> list[tuple[str, str, str, str, int]]:
    """(stage, Service name, service, component, port) of every API-like server."""
    by_name = {(o.name, w.name): w for o in services for w in o.workloads}
    out: dict[str, tuple[str, str, str, str, int]] = {}
    for o in services:
        urls = [e.internal for e in o.registration.endpoints] if o.registration else []
        if o.name == "keystone":
            urls = [keystone_internal(site)]
        if o.name == "horizon":
            urls = [f"http://horizon:{HORIZON_PORT}"]
        if o.name == "nova":
            urls += [
                f"http://nova-metadata:{METADATA_PORT}",
                f"http://nova-novncproxy:{NOVNCPROXY_PORT}",
            ]
        for url in urls:
            parts = urlsplit(url)
            name = parts.hostname.split(".")[0]
            wl = by_name[(o.name, name)]
            out.setdefault(name, (wl.stage, name, o.name, wl.component, parts.port))
    return list(out.values())


def network_policy(site: Site, services: list[ServiceOutput]) -> ServiceOutput:
    out = ServiceOutput("network-policy", [], [])
    enabled = [o.name for o in services]
    add = lambda stage, obj: out.manifests.setdefault(stage, []).append(obj)  # noqa: E731

    add("infra", _policy("default-deny-ingress", {}, []))
    if "mariadb" in enabled:
        with_db = [o.name for o in services if o.db_sync]
        add(
            "infra",
            _server(
                site,
                "mariadb",
                _pods("mariadb", "server"),
                [{"podSelector": _names(with_db)}],
                MARIADB_PORT,
            ),
        )
    if "rabbitmq" in enabled:
        users = [s for s in enabled if "rabbitmq" in REQUIRES.get(s, ())]
        add(
            "infra",
            _server(
                site,
                "rabbitmq",
                _pods("rabbitmq", "server"),
                [{"podSelector": _names(users)}],
                RABBITMQ_PORT,
            ),
        )
    if "memcached" in enabled:
        # keystone's cache, horizon's sessions, every keystonemiddleware's token cache
        users = [s for s in enabled if s in REQUIRES]
        add(
            "infra",
            _server(
                site,
                "memcached",
                _pods("memcached", "server"),
                [{"podSelector": _names(users)}],
                MEMCACHED_PORT,
            ),
        )
    if "neutron" in enabled:
        neutron = next(o for o in services if o.name == "neutron")
        ovn_clients = {
            "matchLabels": {NAME: "neutron"},
            "matchExpressions": [
                {
                    "key": COMPONENT,
                    "operator": "In",
                    "values": sorted(
                        w.component for w in neutron.workloads if w.kind == "Deployment"
                    ),
                }
            ],
        }
        for name, comp, port in (
            ("ovn-nb-db", "ovnNbDb", NB_PORT),
            ("ovn-sb-db", "ovnSbDb", SB_PORT),
        ):
            add(
                "infra",
                _server(site, name, _pods("neutron", comp), [{"podSelector": ovn_clients}], port),
            )

    ingress = _namespace(site.get("networkPolicy.ingressNamespace"))
    for stage, name, svc, comp, port in _apis(site, services):
        peers = [] if name == "nova-metadata" else [{"podSelector": {}}, ingress]
        add(stage, _server(site, name, _pods(svc, comp), peers, port))

    if site.get("monitoring.enabled"):
        prometheus = _namespace(site.get("monitoring.namespace"))
        for t in scrape_targets(site):
            add(
                t.stage,
                _policy(
                    f"{t.name}-metrics",
                    _pods(t.service, t.component),
                    [_rule([prometheus], t.port)],
                ),
            )
    return out
