"""Generated fleets for `make bench` (tools/bench.py): N sites made from the example sites.

Site ``i`` of a fleet is a copy of one example site (site-a, site-a-ha, site-b in turn),
with its own name, region, endpoint hosts and secret key prefix, and, from ``i``, its own
OpenStack release, overlays (site-a and site-a-ha: one of :data:`OVERLAY_SETS`) and
replicas. So no two sites render the same tree (no site is a cache hit of another), the
fleet mixes full and small control planes as a real one does, and every site builds
cleanly (tests/test_fleetgen.py checks that the variants are those below; `make bench`
builds them).

:func:`make_fleet` writes a site repository: base/, overlays/ and sites/defaults.yaml of
the project, and sites/<name>/ for each generated site. :func:`users` tells which sites
read a base or an overlay, for the one-change measurements.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TEMPLATES = ("site-a", "site-a-ha", "site-b")
RELEASES = ("2025.1", "2026.1", "2026.2")
# The overlays a site-a or site-a-ha copy uses: every one, or without some of them.
OVERLAY_SETS = (
    ("ha", "ceph", "ingress", "tls", "monitoring", "network-policy"),
    ("ha", "ceph", "ingress", "tls"),
    ("ha", "ceph", "monitoring", "network-policy"),
    ("ceph", "ingress", "tls", "monitoring"),
)
# The regions of the templates, as they appear in their endpoint hosts.
_HOST_REGION = {"site-a": "fra1", "site-a-ha": "fra2", "site-b": "lab1"}


@dataclass(frozen=True)
class Generated:
    """One site of a generated fleet."""

    name: str
    template: str
    release: str
    overlays: tuple[str, ...]
    replicas: int  # keystone API replicas (1-3)
    services: tuple[str, ...]  # the services it enables


def plan(count: int) -> list[Generated]:
    """The ``count`` sites of a fleet, in name order."""
    out = []
    for i in range(count):
        template = TEMPLATES[i % len(TEMPLATES)]
        release = RELEASES[(i // len(TEMPLATES)) % len(RELEASES)]
        if template == "site-b":
            overlays: tuple[str, ...] = ()
            services = ("keystone", "glance", "placement", "nova", "neutron")
        else:
            overlays = OVERLAY_SETS[(i // 3) % len(OVERLAY_SETS)]
            services = (
                "keystone", "glance", "placement", "nova", "neutron", "cinder", "heat", "horizon"
            )  # fmt: skip
        out.append(
            Generated(f"s{i:04d}-{template}", template, release, overlays, 1 + i % 3, services)
        )
    return out


def site_definition(source: dict[str, Any], site: Generated, index: int) -> dict[str, Any]:
    """The site.yaml of ``site``: its template's ``source`` with the site's values."""
    data = yaml.safe_load(yaml.safe_dump(source))  # a deep copy
    region = f"r{index:04d}"
    data["name"] = site.name
    data["description"] = f"generated from {site.template} (make bench)"
    data["region"] = region.upper()
    data.setdefault("openstack", {})["release"] = site.release
    hosts = data.get("endpoints", {}).get("hosts", {})
    for svc, host in hosts.items():
        hosts[svc] = host.replace(_HOST_REGION[site.template], region)
    if site.template != "site-b":
        data["overlays"] = list(site.overlays)
        data["secrets"]["keyPrefix"] = f"openstack/{site.name}/"
        if "tls" not in site.overlays:
            data.pop("tls", None)
        if "network-policy" not in site.overlays:
            data.pop("networkPolicy", None)
    keystone = data["services"].setdefault("keystone", {})
    keystone.setdefault("api", {})["replicas"] = site.replicas
    return data


def make_fleet(project: Path, target: Path, count: int) -> list[Generated]:
    """A site repository at ``target`` with ``count`` generated sites; returns them."""
    for part in ("base", "overlays"):
        shutil.copytree(project / part, target / part)
    (target / "sites").mkdir(parents=True)
    shutil.copy2(project / "sites" / "defaults.yaml", target / "sites" / "defaults.yaml")
    sources = {
        t: yaml.safe_load((project / "sites" / t / "site.yaml").read_text()) for t in TEMPLATES
    }
    sites = plan(count)
    for index, site in enumerate(sites):
        src_dir = project / "sites" / site.template
        dest = target / "sites" / site.name
        shutil.copytree(src_dir, dest, ignore=shutil.ignore_patterns("site.yaml"))
        text = yaml.safe_dump(site_definition(sources[site.template], site, index), sort_keys=False)
        (dest / "site.yaml").write_text(text)
    return sites


def users(sites: list[Generated], *, service: str | None = None, overlay: str | None = None):
    """The names of the sites that enable ``service`` (so read base/<service>/) or use
    ``overlay``."""
    return [
        s.name
        for s in sites
        if (service is None or service in s.services) and (overlay is None or overlay in s.overlays)
    ]
