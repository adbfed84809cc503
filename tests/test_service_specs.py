"""Services declare what they need and the ports of their Services (``SPEC`` of each
module, collected in ``kkc.services.SPECS``); the features read those declarations, and
every container's Kolla config comes from the one helper, ``ServiceConfig``.

Only kkc's own files are read; nothing is rendered.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import yaml

from kkc.services import PUBLIC_PORTS, REQUIRES, SERVICES, SPECS

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = PROJECT / "compiler" / "kkc"


def _model():
    """The module of the site model (kkc.site, or kkc.model once the loader is split off)."""
    try:
        return importlib.import_module("kkc.model")
    except ModuleNotFoundError:
        return importlib.import_module("kkc.site")


def test_every_service_declares_a_spec_in_bring_up_order() -> None:
    assert list(SPECS) == list(SERVICES)


def test_declared_requirements_are_those_the_site_checks_enforce() -> None:
    assert REQUIRES == _model().REQUIRES
    for name, needs in REQUIRES.items():
        assert set(needs) <= set(SERVICES) - {name}, name


def test_declared_public_ports_are_the_public_hosts() -> None:
    declared = {
        name: tuple(p.public for p in spec.ports if p.public) for name, spec in SPECS.items()
    }
    assert {n: set(h) for n, h in declared.items() if h} == {
        n: set(h) for n, h in _model().PUBLIC_HOSTS.items()
    }
    assert len(PUBLIC_PORTS) == sum(len(h) for h in declared.values())


@pytest.mark.parametrize(
    "svc,port", [(svc, p) for svc, spec in SPECS.items() for p in spec.ports], ids=str
)
def test_each_declared_port_is_a_port_of_its_service_in_the_bases(svc, port) -> None:
    found = list(PACKAGE.parents[1].glob(f"base/*/{port.stage}/{port.service}-service.yaml"))
    assert len(found) == 1, f"{svc}: no base/*/{port.stage}/{port.service}-service.yaml"
    service = yaml.safe_load(found[0].read_text(encoding="utf-8"))
    assert port.port in [p["port"] for p in service["spec"]["ports"]], svc
    assert port.reach in ("namespace", "nodes", "service", "clients"), svc


def _service_imports(path: Path) -> set[str]:
    """The kkc.services modules a module of kkc/features/ imports from (``from
    ..services.x import``, ``from ..services import x``, ``from kkc.services.x import``)."""
    submodules = {p.stem for p in (PACKAGE / "services").glob("*.py")} - {"__init__"}
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = node.module.removeprefix("kkc.") if node.level in (0, 2) else ""
            if module == "services":
                out |= {f"services.{a.name}" for a in node.names if a.name in submodules}
                out.add("services")
            elif module.startswith("services."):
                out.add(module)
    return out


@pytest.mark.parametrize("path", sorted((PACKAGE / "features").glob("*.py")), ids=lambda p: p.name)
def test_features_import_no_service_module(path: Path) -> None:
    """Ports and requirements come from the declarations, not a service's constants."""
    assert _service_imports(path) <= {"services", "services.common"}, path.name


@pytest.mark.parametrize("path", sorted((PACKAGE / "services").glob("*.py")), ids=lambda p: p.name)
def test_service_modules_build_kolla_configs_through_service_config(path: Path) -> None:
    calls = [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "KollaConfig"
    ]
    if path.name == "common.py":  # ServiceConfig.config itself
        assert len(calls) == 1
    else:
        assert calls == [], f"{path.name}:{calls}: use ServiceConfig(...).config"


def test_uwsgi_and_apache_snippets_exist_once() -> None:
    """Only services/wsgi.py writes uwsgi options or an Apache Listen line."""
    writers = sorted(
        p.name
        for p in (PACKAGE / "services").glob("*.py")
        if any(s in p.read_text(encoding="utf-8") for s in ('"hook-master-start"', "Listen 0.0"))
    )
    assert writers == ["wsgi.py"]
