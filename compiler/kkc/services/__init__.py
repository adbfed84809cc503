"""What each service contributes to a site's output, beyond its static bases in base/.

Per-release differences are looked up in :mod:`kkc.releases`, never by copying a base.
"""

from __future__ import annotations

from collections.abc import Callable

from ..model import Site
from .cinder import cinder
from .common import (
    HEADER,
    KEEP,
    STAGES,
    DbSync,
    Registration,
    SecretKey,
    SecretSpec,
    ServiceOutput,
    Workload,
)
from .glance import glance
from .heat import heat
from .horizon import horizon
from .infra import mariadb, memcached, rabbitmq
from .keystone import keystone
from .neutron import neutron
from .nova import nova
from .placement import placement
from .secret_refs import add_secret_refs

# In bring-up order; within a stage, the generated kustomization lists bases in this order.
SERVICES: dict[str, Callable[[Site], ServiceOutput]] = {
    "mariadb": mariadb,
    "rabbitmq": rabbitmq,
    "memcached": memcached,
    "keystone": keystone,
    "glance": glance,
    "placement": placement,
    "cinder": cinder,
    "neutron": neutron,
    "nova": nova,
    "heat": heat,
    "horizon": horizon,
}

__all__ = [
    "HEADER",
    "KEEP",
    "STAGES",
    "DbSync",
    "Registration",
    "SecretKey",
    "SecretSpec",
    "ServiceOutput",
    "Workload",
    "enabled_services",
]


def enabled_services(site: Site) -> list[ServiceOutput]:
    """The outputs of the enabled services, the secret references of the site's config
    overrides in their secret drop-ins (:func:`kkc.services.secret_refs.add_secret_refs`)."""
    outputs = [build(site) for name, build in SERVICES.items() if site.enabled(name)]
    for out in outputs:
        add_secret_refs(site, out)
    return outputs
