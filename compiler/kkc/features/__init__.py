"""Site features: objects that depend on the whole site rather than on one service
(Ingress objects and cert-manager Certificates for the public endpoints, monitoring,
network policies, ...).

Each feature is switched on by a top-level key of the site definition (usually set by the
``defaults.yaml`` of its overlay in ``overlays/<feature>/``) and contributes a
:class:`~kkc.services.ServiceOutput`, rendered from the site and the enabled services'
outputs, that :func:`kkc.generate.render_tree` places in the stages like a service's
(objects/, patches/, config/). ``check`` adds the features' semantic checks to the site's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import Problem
from ..model import Site
from ..services import ServiceOutput, enabled_services
from . import ingress, tls
from .monitoring import monitoring
from .network_policy import network_policy

Feature = Callable[[Site, list[ServiceOutput]], ServiceOutput | None]


def _when_enabled(key: str, build: Callable[[Site, list[ServiceOutput]], ServiceOutput]) -> Feature:
    return lambda site, services: build(site, services) if site.get(f"{key}.enabled") else None


# In output order; each returns None when its feature is off.
FEATURES: tuple[Feature, ...] = (
    lambda site, _services: ingress.output(site),
    _when_enabled("monitoring", monitoring),
    _when_enabled("networkPolicy", network_policy),
)
CHECKS: tuple[Callable[[Site, Any], list[Problem]], ...] = (tls.check,)


def outputs(site: Site, services: list[ServiceOutput]) -> list[ServiceOutput]:
    return [out for build in FEATURES if (out := build(site, services)) is not None]


def site_outputs(site: Site) -> list[ServiceOutput]:
    """The enabled services' outputs followed by the features'."""
    services = enabled_services(site)
    return services + outputs(site, services)


def check(site: Site, where: Any) -> list[Problem]:
    """Semantic checks of the features; ``where`` locates a path as in kkc.loader."""
    return [p for chk in CHECKS for p in chk(site, where)]
