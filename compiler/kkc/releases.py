"""What each supported OpenStack release looks like in Kolla images: one place for every
per-release difference (distro versions, web server per service)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Release:
    name: str
    kolla: str  # the Kolla series that builds the images
    distros: dict[str, str]  # base distro -> distro version used in the image tag
    uwsgi: frozenset[str]  # services whose API runs under uwsgi (the rest: Apache mod_wsgi)
    # [ml2] tenant_network_types was renamed project_network_types in neutron 28 (2026.1)
    ml2_network_types: str = "project_network_types"


RELEASES: dict[str, Release] = {
    r.name: r
    for r in (
        Release(
            name="2025.1",
            kolla="20",
            distros={"rocky": "9", "ubuntu": "noble", "debian": "bookworm", "centos": "stream9"},
            uwsgi=frozenset({"nova", "placement", "cinder"}),
            ml2_network_types="tenant_network_types",
        ),
        Release(
            name="2026.1",
            kolla="22",
            distros={"rocky": "10", "ubuntu": "noble", "debian": "trixie", "centos": "stream10"},
            uwsgi=frozenset(
                {"nova", "placement", "cinder", "keystone", "heat", "horizon", "neutron", "glance"}
            ),
        ),
        Release(
            name="2026.2",
            kolla="23",
            distros={"rocky": "10", "ubuntu": "noble", "debian": "trixie"},  # no CentOS in Kolla 23
            uwsgi=frozenset(
                {"nova", "placement", "cinder", "keystone", "heat", "horizon", "neutron", "glance"}
            ),
        ),
    )
}

DISTROS = sorted({d for r in RELEASES.values() for d in r.distros})


def image_tag(release: str, distro: str, suffix: str = "") -> str:
    """Kolla's tag: <release>-<distro>-<distro version><suffix>, e.g. 2025.1-rocky-9."""
    rel = RELEASES[release]
    return f"{rel.name}-{distro}-{rel.distros[distro]}{suffix}"


def rhel_family(distro: str) -> bool:
    return distro in ("rocky", "centos")
