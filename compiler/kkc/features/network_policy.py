"""Feature ``networkPolicy`` (overlay ``network-policy``): NetworkPolicies that let in
exactly the flows the control plane needs, derived from what the enabled services are.

Ingress only: ``default-deny-ingress`` (stage infra) selects every pod of the namespace;
each allow policy selects the pods of one server and sits in that server's stage; the
members of a RAFT cluster (the OVN databases with 3 or 5 replicas) also admit each other on
its RAFT port. Egress
is not restricted. The node agents (nova-compute, cinder-volume, ovn-controller, the OVN
metadata agent) run with hostNetwork: their connections come from the node's address, so
the servers they reach also admit ``networkPolicy.nodeCIDRs``.
"""

from __future__ import annotations

from typing import Any

from ..model import Site, mariadb_operator, rabbitmq_operator
from ..services import SPECS, Port, ServiceOutput
from ..services.common import (
    GALERA_AGENT_PORT,
    GALERA_BACKUP,
    GALERA_POD_LABELS,
    GALERA_PORTS,
    RABBITMQ_CLUSTER_PEER_PORTS,
    RABBITMQ_CLUSTER_POD_LABELS,
    RABBITMQ_MANAGEMENT_PORT,
    rotation_clients,
)
from .monitoring import scrape_targets

NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"
NS_NAME = "kubernetes.io/metadata.name"  # set by Kubernetes on every Namespace

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


def _clients(services: list[ServiceOutput], server: str) -> list[str]:
    """The enabled services that connect to the infrastructure ``server`` (a Port with
    reach ``clients``)."""
    if server == "mariadb":
        return [o.name for o in services if o.db_sync]
    if server == "rabbitmq":
        return [o.name for o in services if "rabbitmq" in SPECS[o.name].requires]
    # memcached: keystone's cache, horizon's sessions, every keystonemiddleware's token cache
    return [o.name for o in services if SPECS[o.name].requires]


def _peers(
    site: Site, services: list[ServiceOutput], out: ServiceOutput, port: Port
) -> list[dict[str, Any]]:
    """Who may connect to ``port`` of ``out`` (the nodes are added by :func:`_server`)."""
    if port.reach == "namespace":  # an API: every pod of the namespace and the ingress
        return [{"podSelector": {}}, _namespace(site.get("networkPolicy.ingressNamespace"))]
    if port.reach == "service":  # the service's own Deployments
        own = sorted(w.component for w in out.workloads if w.kind == "Deployment")
        selector = {
            "matchLabels": {NAME: out.name},
            "matchExpressions": [{"key": COMPONENT, "operator": "In", "values": own}],
        }
        return [{"podSelector": selector}]
    if port.reach == "clients":
        return [{"podSelector": _names(_clients(services, port.service))}]
    return []  # nodes: only the node agents


def _galera(site: Site, services: list[ServiceOutput], port: Port) -> dict[str, Any]:
    """mariadb-operator's Galera members (labelled as kolla's MariaDB pod is, through
    spec.podMetadata): its clients and the backup Jobs on the client port, the members
    among themselves on the Galera ports (SST, replication, IST), and the operator (in
    ``services.mariadb.operatorNamespace``) on the client port and its agent's."""
    clients = _clients(services, port.service) + [GALERA_BACKUP]
    peers: list[dict[str, Any]] = [{"podSelector": _names(clients)}]
    if _from_nodes(site, port.service):
        peers += [{"ipBlock": {"cidr": c}} for c in site.get("networkPolicy.nodeCIDRs")]
    members = {"podSelector": {"matchLabels": dict(GALERA_POD_LABELS)}}
    operator = _namespace(site.get("services.mariadb.operatorNamespace"))
    rules = [
        _rule(peers, port.port),
        _rule([members], *GALERA_PORTS),
        _rule([operator], port.port, GALERA_AGENT_PORT),
    ]
    return _policy(port.service, _pods("mariadb", "server"), rules)


def _rabbitmq_cluster(site: Site, services: list[ServiceOutput], port: Port) -> dict[str, Any]:
    """The RabbitMQ cluster operator's members: its clients on AMQP, the members among
    themselves (epmd, distribution, CLI tools), and the messaging topology operator (in
    ``services.rabbitmq.operatorNamespace``) on the management API. The cluster operator
    itself execs into the pods (through the API server, not the pod network)."""
    members = {"matchLabels": dict(RABBITMQ_CLUSTER_POD_LABELS)}
    peers: list[dict[str, Any]] = [{"podSelector": _names(_clients(services, port.service))}]
    if _from_nodes(site, port.service):
        peers += [{"ipBlock": {"cidr": c}} for c in site.get("networkPolicy.nodeCIDRs")]
    operator = _namespace(site.get("services.rabbitmq.operatorNamespace"))
    rules = [
        _rule(peers, port.port),
        _rule([{"podSelector": members}], *RABBITMQ_CLUSTER_PEER_PORTS),
        _rule([operator], RABBITMQ_MANAGEMENT_PORT),
    ]
    return _policy(port.service, members, rules)


def network_policy(site: Site, services: list[ServiceOutput]) -> ServiceOutput:
    out = ServiceOutput("network-policy", [], [])
    add = lambda stage, obj: out.manifests.setdefault(stage, []).append(obj)  # noqa: E731

    add("infra", _policy("default-deny-ingress", {}, []))
    rotation = rotation_clients(site)
    # every Service the enabled services declare, in their order (SPEC.ports)
    for o in services:
        workloads = {w.name: w for w in o.workloads}
        for port in SPECS[o.name].ports:
            if o.name == "mariadb" and mariadb_operator(site):  # no workload of kkc's
                add(port.stage, _galera(site, services, port))
                continue
            if o.name == "rabbitmq" and rabbitmq_operator(site):  # the operator's pods
                add(port.stage, _rabbitmq_cluster(site, services, port))
                continue
            workload = workloads[port.service]
            pods = _pods(o.name, workload.component)
            peers = _peers(site, services, o, port)
            policy = _server(site, port.service, pods, peers, port.port)
            if workload.peer_port:  # the members of a RAFT cluster reach each other
                policy["spec"]["ingress"].append(_rule([{"podSelector": pods}], workload.peer_port))
            if port.service in rotation:  # a rotation Job that sets a password there
                component, ports = rotation[port.service]
                job = {"podSelector": _pods(o.name, component)}
                policy["spec"]["ingress"].append(_rule([job], *ports))
            add(port.stage, policy)

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
