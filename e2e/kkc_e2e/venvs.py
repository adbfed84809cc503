"""The venv of each release under .venv/e2e-<release>/, built the way
tools/gen-option-catalog builds its own (same pins, same release-day cutoff: its
``build_env`` is imported, not copied), plus what the harness's Jobs and APIs need:
the database and cache clients, openstacksdk (kolla-toolbox's ks-register.py) and uWSGI
(the rendered start command of the APIs)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXTRA = ("PyMySQL", "python-memcached", "pymemcache", "openstacksdk", "pyuwsgi")
# horizon of each series (the dashboard is not in the option catalog's PINS): the
# newest point release of the series' major version on its release day
HORIZON = {"2025.1": "horizon==25.3.0", "2026.1": "horizon==26.0.0", "2026.2": "horizon==27.0.0"}
# as the releases' upper-constraints pin it: horizon's SCSS imports Font Awesome 4's
# paths (XStatic-Font-Awesome 6 has other ones: "compress" fails)
HORIZON_PINS = ("XStatic-Font-Awesome==4.7.0.0",)


def catalog_tool():
    path = ROOT / "tools" / "gen-option-catalog"
    loader = importlib.machinery.SourceFileLoader("gen_option_catalog", str(path))
    spec = importlib.util.spec_from_loader("gen_option_catalog", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def ensure(release: str, base: Path | None = None, horizon: bool = False) -> Path:
    base = base or ROOT / ".venv"
    venv = base / f"e2e-{release}"
    work = venv / "work"
    work.mkdir(parents=True, exist_ok=True)
    tool = catalog_tool()
    extra = EXTRA + ((HORIZON[release], *HORIZON_PINS) if horizon and release in HORIZON else ())
    tool.build_env(release, work, "https://pypi.org/simple", venv=venv, extra=extra)
    # the images' venvs have lib/python3 (openstack-base: ln -s python3.X lib/python3),
    # which rendered paths use (horizon's WSGI script and static files)
    lib = venv / "lib"
    if not (lib / "python3").exists():
        (lib / "python3").symlink_to(next(p.name for p in lib.glob("python3.*")))
    if horizon:
        dashboard_links(venv)
    return venv


def dashboard_links(venv: Path) -> None:
    """What horizon's Dockerfile does in the venv: local_settings.py and
    local_settings.d are links to /etc/openstack-dashboard (dangling here; they resolve
    in the container), and the static root exists (the harness binds a directory of
    each container there)."""
    site = venv / "lib" / "python3" / "site-packages"
    local = site / "openstack_dashboard" / "local"
    for name, target in (
        ("local_settings.py", "/etc/openstack-dashboard/local_settings.py"),
        ("local_settings.d", "/etc/openstack-dashboard/local_settings.d"),
    ):
        path = local / name
        if path.is_symlink() and str(path.readlink()) == target:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        path.symlink_to(target)
    (site / "static").mkdir(exist_ok=True)


def set_configs(release: str, kolla_dir: Path) -> Path:
    """Kolla's own set_configs.py of the release (unpacked by tools/gen-kolla-data)."""
    tree = kolla_dir / release
    facts = json.loads((tree / "kkc-unpacked.json").read_text())
    docker = tree / facts["docker"] if "docker" in facts else None
    if docker is None or not (docker / "base" / "set_configs.py").exists():
        found = sorted(tree.glob("**/docker/base/set_configs.py"))
        if not found:
            raise FileNotFoundError(f"no set_configs.py under {tree}")
        return found[0]
    return docker / "base" / "set_configs.py"


def image_users(set_configs_path: Path) -> dict[str, str]:
    """The user each Kolla image of the release runs as: the last ``USER`` of its
    Dockerfile.j2 (root where it sets none), read from the release's kolla package."""
    docker = set_configs_path.parent.parent
    users: dict[str, str] = {}
    for dockerfile in sorted(docker.glob("**/Dockerfile.j2")):
        found = [
            line.split()[1]
            for line in dockerfile.read_text().splitlines()
            if line.startswith("USER ") and len(line.split()) > 1
        ]
        users[dockerfile.parent.name] = found[-1] if found else "root"
    return users
