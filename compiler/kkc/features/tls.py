"""``tls``: a cert-manager Certificate (cert-manager.io/v1) for every public host name,
issued by ``tls.issuer`` (an Issuer or ClusterIssuer the cluster has); the Ingress
objects of :mod:`kkc.features.ingress` terminate TLS with the Secrets they produce.

TLS ends at the ingress controller: the traffic from the controller to the API pods is
plain HTTP inside the cluster (the services read X-Forwarded-Proto:
``[oslo_middleware] enable_proxy_headers_parsing``, Horizon ``SECURE_PROXY_SSL_HEADER``).
"""

from __future__ import annotations

from typing import Any

from ..errors import Problem
from ..model import Site
from ..schema import dotted
from ..services import SecretKey, SecretSpec


def enabled(site: Site) -> bool:
    return bool(site.get("tls.enabled"))


def secret_name(name: str) -> str:
    """The Secret with the public certificate and key of the Ingress ``name``."""
    return f"{name}-public-tls"


def secret(name: str, host: str) -> SecretSpec:
    """The Certificate's Secret, for `kkc secrets` (cert-manager creates and renews it)."""
    return SecretSpec(
        secret_name(name),
        f"TLS certificate of https://{host} (served by Ingress {name})",
        (
            SecretKey("tls.crt", f"certificate chain for {host}"),
            SecretKey("tls.key", "private key"),
        ),
        created_by=f"cert-manager (Certificate {name}-public)",
    )


def certificate(site: Site, name: str, host: str) -> dict[str, Any]:
    issuer = site.get("tls.issuer")
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": f"{name}-public"},
        "spec": {
            "secretName": secret_name(name),
            "dnsNames": [host],
            "issuerRef": {
                "group": issuer.get("group", "cert-manager.io"),
                "kind": issuer["kind"],
                "name": issuer["name"],
            },
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        },
    }


def check(site: Site, where: Any) -> list[Problem]:
    if not enabled(site):
        return []
    problems = []

    def add(path: tuple[str, ...], code: str, msg: str, **kw: Any) -> None:
        display, line, col = where(path, **kw)
        problems.append(Problem(display, line, col, code, f"{dotted(path)}: {msg}"))

    if not site.get("ingress.enabled"):
        add(
            ("tls", "enabled"),
            "KKC145",
            "TLS is terminated by the Ingress objects of the public endpoints, and "
            "ingress.enabled is false: add the ingress overlay (overlays: [ingress, tls]) "
            "or set ingress.enabled: true",
        )
    if not site.get("tls.issuer.name"):
        add(
            ("tls", "issuer"),
            "KKC113",
            "tls is enabled and needs issuer.name: the cert-manager "
            f"{site.get('tls.issuer.kind', 'ClusterIssuer')} that signs the public "
            "certificates",
            is_key=True,
            in_site=True,
        )
    if site.get("endpoints.scheme") != "https":
        add(
            ("endpoints", "scheme"),
            "KKC146",
            f'is "{site.get("endpoints.scheme")}" but tls is enabled: the Keystone catalog '
            "and the services would advertise http:// for endpoints served over https; "
            "set endpoints.scheme: https",
        )
    return problems
