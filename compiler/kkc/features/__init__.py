"""Site features: objects that depend on the whole site rather than on one service
(Ingress objects and cert-manager Certificates for the public endpoints, ...).

Each feature is switched on by a top-level key of the site definition (usually set by the
``defaults.yaml`` of its overlay in ``overlays/<feature>/``) and contributes a
:class:`~kkc.services.ServiceOutput` whose ``manifests`` :mod:`kkc.generate` places in the
stages like a service's. ``check`` adds the feature's semantic checks to the site's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import Problem
from ..services import ServiceOutput
from ..site import Site
from . import ingress, tls

# In output order; each returns None when its feature is off.
FEATURES: tuple[Callable[[Site], ServiceOutput | None], ...] = (ingress.output,)
CHECKS: tuple[Callable[[Site, Any], list[Problem]], ...] = (tls.check,)


def outputs(site: Site) -> list[ServiceOutput]:
    return [out for build in FEATURES if (out := build(site)) is not None]


def check(site: Site, where: Any) -> list[Problem]:
    """Semantic checks of the features; ``where`` locates a path as in kkc.site."""
    return [p for chk in CHECKS for p in chk(site, where)]
