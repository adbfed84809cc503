"""Site features that overlays switch on (``<feature>.enabled`` in an overlay's
defaults.yaml): each is one function ``(site, services) -> ServiceOutput`` that renders the
site-specific objects of the feature from what the enabled services' outputs say, into the
stage they belong to. :func:`kkc.generate.render_tree` appends them to the services'
outputs, so they go through the same stage rendering (objects/, patches/, config/).
"""

from __future__ import annotations

from collections.abc import Callable

from ..services import ServiceOutput
from ..site import Site
from .monitoring import monitoring
from .network_policy import network_policy

# site key -> generator; in this order after the services' outputs.
FEATURES: dict[str, Callable[[Site, list[ServiceOutput]], ServiceOutput]] = {
    "monitoring": monitoring,
    "networkPolicy": network_policy,
}


def enabled_features(site: Site, services: list[ServiceOutput]) -> list[ServiceOutput]:
    return [build(site, services) for key, build in FEATURES.items() if site.get(f"{key}.enabled")]
