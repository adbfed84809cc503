"""Compute a site's outputs once: what each enabled service contributes, then the secret
references of the site's config overrides in their secret drop-ins, then the overrides
merged into their config files, then the site features built on all of that.

The one result (:class:`Outputs`) is handed to generation (:func:`kkc.generate.render_tree`),
the output checks (:mod:`kkc.lint`) and ``kkc secrets``: each command renders each service
of a site once."""

from __future__ import annotations

from dataclasses import dataclass

from . import features, overrides
from .model import Site
from .services import SecretSpec, ServiceOutput
from .services.secret_refs import add_secret_refs


@dataclass
class Outputs:
    services: list[ServiceOutput]  # the enabled services', in bring-up order
    features: list[ServiceOutput]  # the site features', in output order

    @property
    def all(self) -> list[ServiceOutput]:
        """The services' outputs followed by the features'."""
        return self.services + self.features

    def service_secrets(self) -> list[SecretSpec]:
        """The Secrets the services read (the features' are not among them)."""
        return [s for out in self.services for s in out.secrets]

    def all_secrets(self) -> list[SecretSpec]:
        return [s for out in self.all for s in out.secrets]


def compute(site: Site) -> Outputs:
    """The site's outputs, overrides applied (the services are rendered once per site:
    :func:`kkc.overrides.service_outputs`)."""
    services = overrides.service_outputs(site)
    for out in services:
        add_secret_refs(site, out)
    overrides.apply(site, services)
    # the site features (ingress, tls, monitoring, ...) place their objects like a service
    return Outputs(services, features.outputs(site, services))
