"""What each service contributes to a site's output, beyond its static bases in base/.

Per-release differences are looked up in :mod:`kkc.releases`, never by copying a base.
"""

from __future__ import annotations

from collections.abc import Callable

from ..model import Site
from . import cinder as _cinder
from . import galera, rabbitmq_cluster
from . import glance as _glance
from . import heat as _heat
from . import horizon as _horizon
from . import infra as _infra
from . import keystone as _keystone
from . import neutron as _neutron
from . import nova as _nova
from . import placement as _placement
from .cinder import cinder
from .common import (
    HEADER,
    KEEP,
    STAGES,
    DbSync,
    Port,
    Registration,
    SecretKey,
    SecretSpec,
    ServiceOutput,
    ServiceSpec,
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
# What each service declares about itself (its module's SPEC), in the same order.
SPECS: dict[str, ServiceSpec] = {
    "mariadb": _infra.MARIADB,
    "rabbitmq": _infra.RABBITMQ,
    "memcached": _infra.MEMCACHED,
    "keystone": _keystone.SPEC,
    "glance": _glance.SPEC,
    "placement": _placement.SPEC,
    "cinder": _cinder.SPEC,
    "neutron": _neutron.SPEC,
    "nova": _nova.SPEC,
    "heat": _heat.SPEC,
    "horizon": _horizon.SPEC,
}
# service -> the services it needs enabled
REQUIRES: dict[str, tuple[str, ...]] = {n: s.requires for n, s in SPECS.items() if s.requires}
# public endpoint (a key of endpoints.hosts) -> the Service and port behind it
PUBLIC_PORTS: dict[str, Port] = {
    p.public: p for spec in SPECS.values() for p in spec.ports if p.public
}

__all__ = [
    "HEADER",
    "KEEP",
    "STAGES",
    "PUBLIC_PORTS",
    "REQUIRES",
    "SPECS",
    "DbSync",
    "Port",
    "Registration",
    "SecretKey",
    "SecretSpec",
    "ServiceOutput",
    "ServiceSpec",
    "Workload",
    "enabled_services",
    "galera",
    "rabbitmq_cluster",
]


def enabled_services(site: Site) -> list[ServiceOutput]:
    """The outputs of the enabled services, the secret references of the site's config
    overrides in their secret drop-ins (:func:`kkc.services.secret_refs.add_secret_refs`)."""
    outputs = [build(site) for name, build in SERVICES.items() if site.enabled(name)]
    for out in outputs:
        add_secret_refs(site, out)
    return outputs
