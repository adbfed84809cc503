"""RabbitMQ of provider rabbitmq-operator (``services.rabbitmq.provider: rabbitmq-operator``):
a cluster that RabbitMQ's cluster operator runs from one ``RabbitmqCluster`` (stage infra),
and for each OpenStack service that uses RabbitMQ its own ``User``, ``Vhost`` and
``Permission`` (the messaging topology operator).

The cluster operator creates what kolla's base/rabbitmq/ holds as static YAML: the
StatefulSet ``rabbitmq-server``, the Services ``rabbitmq`` (AMQP 5672 and the management
API, where every service's transport_url points) and ``rabbitmq-nodes`` (headless, for the
Erlang distribution), the Erlang cookie and the administrator ``rabbitmq-default-user``
(which the topology operator uses). It creates no PodDisruptionBudget: kkc renders one
(maxUnavailable 1, as the operator's production example does). It runs the official
RabbitMQ image (``services.rabbitmq.image``): the operator starts the image's own
entrypoint and writes its configuration under /etc/rabbitmq/conf.d, which Kolla's rabbitmq
image (kolla_start and config.json) does not read.

Each service ``<svc>`` connects as RabbitMQ user ``<svc>`` to vhost ``<svc>`` (quorum
queues by default, ``defaultQueueType``): the User imports its credentials from Secret
``rabbitmq-user-<svc>`` (keys ``username`` and ``password``, the password from the secret
store entry ``<svc>_rabbitmq_password``, the one the service's own ``<svc>-secrets`` reads
for its transport_url). No Policy is rendered: quorum queues replicate by their type, not by
a policy as classic mirrored queues did (which RabbitMQ 4 removed).
"""

from __future__ import annotations

from typing import Any

from ..model import REQUIRES, Site, rabbitmq_replicas
from .common import (
    RABBITMQ_CLUSTER_POD_LABELS,
    SecretKey,
    SecretSpec,
    ServiceOutput,
    header,
    zone_spread,
)

API = "rabbitmq.com/v1beta1"
NAME = "rabbitmq"  # the RabbitmqCluster, and so its Service rabbitmq and pods rabbitmq-server-N
# the operator releases whose CRDs kkc embeds (cluster-operator commit 06cda8e8e1a9 and
# messaging-topology-operator commit e736e2df95cd: their CRDs are those of v2.22.3, v1.20.1)
OPERATOR = "rabbitmq-cluster-operator"
OPERATOR_RELEASE = "2.22.3"
TOPOLOGY_OPERATOR = "messaging-topology-operator"
TOPOLOGY_OPERATOR_RELEASE = "1.20.1"
POD_LABELS = RABBITMQ_CLUSTER_POD_LABELS
SELECTOR = {"app.kubernetes.io/name": NAME}  # the operator selects the members by name alone
# rabbitmq.conf of the cluster, beyond what the operator writes (its peer discovery, the
# memory watermark from the container's limit, the default user)
CONFIG = ("cluster_partition_handling = pause_minority", "log.console.level = info")


def clients(site: Site) -> list[str]:
    """The enabled services that use RabbitMQ, each with its own user and vhost."""
    return [svc for svc, needs in REQUIRES.items() if "rabbitmq" in needs and site.enabled(svc)]


def user_secret(svc: str) -> str:
    return f"rabbitmq-user-{svc}"


def _override(site: Site) -> dict[str, Any]:
    """The StatefulSet settings the RabbitmqCluster has no field for: the control-plane
    nodeSelector and, with ``ha.enabled``, the zone spread."""
    pod: dict[str, Any] = {"containers": []}
    placement = site.get("placement", {}) or {}
    if placement.get("nodeSelector"):
        pod["nodeSelector"] = dict(sorted(placement["nodeSelector"].items()))
    spread = zone_spread(site, {"matchLabels": dict(SELECTOR)})
    if spread:
        pod["topologySpreadConstraints"] = spread
    return {"statefulSet": {"spec": {"template": {"spec": pod}}}}


def cluster_resource(site: Site) -> dict[str, Any]:
    """The RabbitmqCluster: ``services.rabbitmq.server.replicas`` members (3 by default) on
    distinct nodes, every stable feature flag enabled (so that an image change finds them
    on, as kolla's preStop hook does)."""
    server = site.get("services.rabbitmq.server", {}) or {}
    storage = server.get("storage", {}) or {}
    persistence: dict[str, Any] = {"storage": storage.get("size", "10Gi")}
    if storage.get("storageClass"):
        persistence["storageClassName"] = storage["storageClass"]
    spec: dict[str, Any] = {
        "replicas": rabbitmq_replicas(site),
        "image": site.get("services.rabbitmq.image"),
        "service": {"type": "ClusterIP"},
        "persistence": persistence,
        "autoEnableAllFeatureFlags": True,
        "rabbitmq": {"additionalConfig": "\n".join([f"# {header(site)}", *CONFIG, ""])},
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": dict(SELECTOR)},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        },
        "override": _override(site),
    }
    if server.get("resources"):
        spec["resources"] = server["resources"]
    tolerations = (site.get("placement", {}) or {}).get("tolerations")
    if tolerations:
        spec["tolerations"] = tolerations
    return {
        "apiVersion": API,
        "kind": "RabbitmqCluster",
        "metadata": {"name": NAME, "labels": {"app.kubernetes.io/part-of": "openstack"}},
        "spec": spec,
    }


def _pdb() -> dict[str, Any]:
    """The cluster operator creates no PodDisruptionBudget: one member at a time may go."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": NAME},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(SELECTOR)}},
    }


def topology(svc: str) -> list[dict[str, Any]]:
    """User, Vhost and Permission of ``svc`` on the cluster: all rights on its own vhost."""
    cluster = {"rabbitmqClusterReference": {"name": NAME}}
    name = f"{NAME}-{svc}"
    meta = {"name": name, "labels": {"app.kubernetes.io/name": svc}}
    return [
        {
            "apiVersion": API,
            "kind": "User",
            "metadata": meta,
            "spec": {**cluster, "importCredentialsSecret": {"name": user_secret(svc)}},
        },
        {
            "apiVersion": API,
            "kind": "Vhost",
            "metadata": meta,
            # retain: a pruned Vhost leaves the vhost and its queues in RabbitMQ
            "spec": {
                **cluster,
                "name": svc,
                "defaultQueueType": "quorum",
                "deletionPolicy": "retain",
            },
        },
        {
            "apiVersion": API,
            "kind": "Permission",
            "metadata": meta,
            "spec": {
                **cluster,
                "vhost": svc,
                "userReference": {"name": name},
                "permissions": {"configure": ".*", "read": ".*", "write": ".*"},
            },
        },
    ]


def _secrets(site: Site) -> list[SecretSpec]:
    return [
        SecretSpec(
            user_secret(svc),
            f"RabbitMQ user {svc} (the messaging topology operator's User rabbitmq-{svc})",
            (
                SecretKey("username", f"name of the RabbitMQ user of {svc}", template=svc),
                SecretKey(
                    "password",
                    f"password of the RabbitMQ user {svc}",
                    source=f"{svc}_rabbitmq_password",
                ),
            ),
        )
        for svc in clients(site)
    ]


def rabbitmq_cluster(site: Site) -> ServiceOutput:
    """The output of ``services.rabbitmq`` with provider rabbitmq-operator: no base, the
    RabbitmqCluster, its PodDisruptionBudget and each service's User, Vhost and Permission
    in stage infra."""
    objects = [cluster_resource(site)]
    if rabbitmq_replicas(site) > 1:
        objects.append(_pdb())
    for svc in clients(site):
        objects += topology(svc)
    return ServiceOutput("rabbitmq", [], [], {}, _secrets(site), manifests={"infra": objects})
