"""Feature ``ha`` (overlay ``ha``): anti-affinity and zone spread of the replicated,
stateless workloads.

Every workload with more than one replica gets pod anti-affinity on
``kubernetes.io/hostname`` (``ha.antiAffinity``: ``preferred`` by default, ``required`` to
refuse a second replica on a node), whether or not the overlay is listed.

The overlay's defaults raise the replicas; kkc already gives every workload with more than
one replica a PodDisruptionBudget, and the bases spread replicas over nodes
(``topologySpreadConstraints`` on ``kubernetes.io/hostname``). With ``ha.enabled`` each such
workload also gets a constraint on ``ha.spread.topologyKey`` (zones by default).

Generated per workload rather than as one static Component patch: the constraint's
``labelSelector`` must select that workload's own pods, which a patch shared by all
workloads can only do with ``matchLabelKeys`` (beta since Kubernetes 1.27, and ignored by
schedulers that have the feature gate off); single-replica workloads (cinder-volume, the
databases) keep no pointless constraint; and the choice of key and strictness is a site
value that ``kkc show --explain`` traces.
"""

from __future__ import annotations

from typing import Any

from ..model import Site
from ..services.common import zone_spread as common_zone_spread


def selector(svc: str, component: str | None) -> dict[str, Any]:
    """The label selector of one workload's pods (PodDisruptionBudget, spread)."""
    return {
        "matchLabels": {
            "app.kubernetes.io/name": svc,
            "app.kubernetes.io/component": component,
        }
    }


def zone_spread(site: Site, svc: str, component: str | None, replicas: int) -> list[dict]:
    """The zone constraint of a workload with ``replicas`` pods, or [] (ha off, one pod).
    Merged by topologyKey with the base's hostname constraint (strategic merge)."""
    return [] if replicas < 2 else common_zone_spread(site, selector(svc, component))


def anti_affinity(site: Site, svc: str, component: str | None, replicas: int) -> dict | None:
    """The pod anti-affinity over nodes of a workload with ``replicas`` pods, or None."""
    if replicas < 2:
        return None
    term = {"labelSelector": selector(svc, component), "topologyKey": "kubernetes.io/hostname"}
    if site.get("ha.antiAffinity") == "required":
        return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": term}
            ]
        }
    }
