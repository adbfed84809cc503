"""tools/fleetgen.py, the fleet generator of `make bench`: the sites it plans differ as
documented, and what it writes loads as valid sites (building them is `make bench`'s work,
never the test suite's)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import yaml

from kkc.loader import list_sites, load_site

PROJECT = Path(__file__).resolve().parent.parent


def _fleetgen():
    spec = importlib.util.spec_from_file_location("fleetgen", PROJECT / "tools" / "fleetgen.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fleetgen", module)
    spec.loader.exec_module(module)
    return module


fleetgen = _fleetgen()


def test_plan_varies_templates_releases_overlays_and_replicas() -> None:
    sites = fleetgen.plan(36)
    assert [s.name for s in sites[:4]] == [
        "s0000-site-a",
        "s0001-site-a-ha",
        "s0002-site-b",
        "s0003-site-a",
    ]
    assert len({s.name for s in sites}) == 36
    assert {s.release for s in sites} == set(fleetgen.RELEASES)
    assert {s.overlays for s in sites if s.template != "site-b"} == set(fleetgen.OVERLAY_SETS)
    assert {s.overlays for s in sites if s.template == "site-b"} == {()}
    assert {s.replicas for s in sites} == {1, 2, 3}
    assert fleetgen.plan(4) == sites[:4]  # a fleet is a prefix of a larger one


def test_users_are_the_sites_with_the_service_or_overlay() -> None:
    sites = fleetgen.plan(12)
    assert fleetgen.users(sites, service="heat") == [
        s.name for s in sites if s.template != "site-b"
    ]
    monitoring = fleetgen.users(sites, overlay="monitoring")
    assert monitoring and all("monitoring" in s.overlays for s in sites if s.name in monitoring)
    assert set(monitoring) < {s.name for s in sites if s.template != "site-b"}


def test_generated_sites_load_with_their_own_names_regions_and_keys(tmp_path: Path) -> None:
    sites = fleetgen.make_fleet(PROJECT, tmp_path / "fleet", 4)
    root = tmp_path / "fleet"
    assert list_sites(root) == [s.name for s in sites]
    data = yaml.safe_load((root / "sites" / "s0003-site-a" / "site.yaml").read_text())
    assert data["region"] == "R0003"
    assert data["endpoints"]["hosts"]["keystone"] == "identity.r0003.cloud.example.com"
    assert data["secrets"]["keyPrefix"] == "openstack/s0003-site-a/"
    assert data["openstack"]["release"] == "2026.1"
    assert data["services"]["keystone"]["api"]["replicas"] == 1
    for name in ("s0001-site-a-ha", "s0002-site-b", "s0003-site-a"):
        site = load_site(root, name)
        assert site.get("name") == name
