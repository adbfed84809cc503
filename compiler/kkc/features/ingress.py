"""``ingress``: an Ingress (networking.k8s.io/v1) for every public endpoint of the enabled
services: host ``endpoints.hosts.<name>``, backend the service's API Service and port,
in the stage of that Service (Keystone: identity; the others: services).

``ingress.className`` becomes spec.ingressClassName; the annotations are
``ingress.annotations`` merged with ``ingress.endpoints.<name>.annotations`` (controller
specific: the ingress overlay sets body size and timeouts for ingress-nginx). With
``tls.enabled`` each Ingress serves its host with the Secret of a cert-manager Certificate
(:mod:`kkc.features.tls`) in the same stage.
"""

from __future__ import annotations

from typing import Any

from ..model import PUBLIC_HOSTS, Site
from ..services import PUBLIC_PORTS, Port, ServiceOutput
from . import tls

# Public endpoint (a key of endpoints.hosts) -> the Service behind it, as the services
# declare it (their SPEC): the Ingress's name, backend port and stage.
BACKENDS: dict[str, Port] = PUBLIC_PORTS


def _ingress(site: Site, endpoint: str, backend: Port, host: str) -> dict[str, Any]:
    annotations = {
        **(site.get("ingress.annotations") or {}),
        **((site.get("ingress.endpoints") or {}).get(endpoint) or {}).get("annotations", {}),
    }
    metadata: dict[str, Any] = {"name": backend.service}
    if annotations:
        metadata["annotations"] = dict(sorted(annotations.items()))
    spec: dict[str, Any] = {}
    if site.get("ingress.className"):
        spec["ingressClassName"] = site.get("ingress.className")
    if tls.enabled(site):
        spec["tls"] = [{"hosts": [host], "secretName": tls.secret_name(backend.service)}]
    path = {
        "path": "/",
        "pathType": "Prefix",
        "backend": {"service": {"name": backend.service, "port": {"number": backend.port}}},
    }
    spec["rules"] = [{"host": host, "http": {"paths": [path]}}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": spec,
    }


def output(site: Site) -> ServiceOutput | None:
    if not site.get("ingress.enabled"):
        return None
    manifests: dict[str, list[dict[str, Any]]] = {}
    secrets = []
    for svc, endpoints in PUBLIC_HOSTS.items():
        if not site.enabled(svc):
            continue
        for endpoint in endpoints:
            backend, host = BACKENDS[endpoint], site.get(f"endpoints.hosts.{endpoint}")
            objects = manifests.setdefault(backend.stage, [])
            objects.append(_ingress(site, endpoint, backend, host))
            if tls.enabled(site):
                objects.append(tls.certificate(site, backend.service, host))
                secrets.append(tls.secret(backend.service, host))
    return ServiceOutput("ingress", [], [], secrets=secrets, manifests=manifests)
