"""The pipeline: each command computes a site's outputs once, the read-only commands
(render, diff, check, lint, show, secrets) never create, lock or write anything under
deploy/, and a site is rendered in a scratch directory outside deploy/ whose links to
base/ and overlays/ keep kustomize's root-only load restrictor as strict as in deploy/.

The sites are keystone only (a build takes about a second): site-k has a config override
file and a site patch (its patches are routed by one build of the unpatched tree)."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from conftest import PROJECT
from helpers import KEYSTONE_SITES
from kkc import overrides, services, writer
from kkc.loader import load_site

SITE_K = KEYSTONE_SITES["site-k"]
PATCH = (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: keystone-api\n"
    "  annotations:\n    example.com/note: pipeline\n"
)


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=120)


def small_repo(dest: Path) -> Path:
    """base/, overlays/ and the fleet defaults of this project and site-k, committed."""
    for part in ("base", "overlays"):
        shutil.copytree(PROJECT / part, dest / part)
    site = dest / "sites" / "site-k"
    (site / "config").mkdir(parents=True)
    (site / "patches").mkdir()
    shutil.copy(PROJECT / "sites" / "defaults.yaml", dest / "sites" / "defaults.yaml")
    (site / "site.yaml").write_text(SITE_K)
    (site / "config" / "keystone.conf").write_text("[DEFAULT]\ndebug = true\n")
    (site / "patches" / "annotate.yaml").write_text(PATCH)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "site repository")
    return dest


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return small_repo(tmp_path / "repo")


@pytest.fixture
def built(repo: Path, kkc) -> Path:
    """The repository with deploy/site-k/ built and committed."""
    result = kkc(repo, "build", "site-k", "--commit")
    assert result.exit_code == 0, result.output
    return repo


def state(top: Path) -> dict[str, tuple[str, int, int, bytes | None]]:
    """Every entry under ``top`` (files, directories, links) with its kind, mode, mtime and
    bytes: any write, creation, removal or touch changes it."""
    out = {}
    for p in sorted(top.rglob("*")):
        st = p.lstat()
        kind = "link" if p.is_symlink() else "dir" if p.is_dir() else "file"
        data = p.read_bytes() if kind == "file" else None
        out[p.relative_to(top).as_posix()] = (kind, st.st_mode, st.st_mtime_ns, data)
    st = top.lstat()
    out["."] = ("dir", st.st_mode, st.st_mtime_ns, None)
    return out


@pytest.fixture
def no_lock(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail any attempt to lock, stage or swap deploy/ (the writer's entry points)."""
    calls: list[str] = []

    def refuse(name: str):
        def call(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"writer.{name} called by a read-only command")

        return call

    for name in ("locked", "stage", "swap", "recover"):
        monkeypatch.setattr(writer, name, refuse(name))
    return calls


READ_ONLY = [
    ("render", "site-k"),
    ("diff", "site-k"),
    ("check", "site-k"),
    ("lint", "site-k"),
    ("show", "site-k"),
    ("show", "site-k", "--explain", "config.keystone.DEFAULT.debug"),
    ("secrets", "site-k"),
]


@pytest.mark.parametrize("args", READ_ONLY, ids=lambda a: " ".join(a))
def test_read_only_commands_leave_deploy_untouched(built: Path, kkc, no_lock, args) -> None:
    before = state(built / "deploy")
    result = kkc(built, *args)
    assert result.exit_code == 0, result.output
    assert no_lock == []
    assert state(built / "deploy") == before


@pytest.mark.parametrize("args", READ_ONLY, ids=lambda a: " ".join(a))
def test_read_only_commands_create_no_deploy(repo: Path, kkc, no_lock, args) -> None:
    result = kkc(repo, *args)
    # check: site-k never built (exit 1); diff: every object added (exit 1)
    assert result.exit_code == (1 if args[0] in ("check", "diff") else 0), result.output
    assert no_lock == []
    assert not (repo / "deploy").exists()


def test_build_still_writes_under_the_lock(repo: Path, kkc, monkeypatch) -> None:
    taken = []
    locked = writer.locked

    def spy(deploy: Path):
        taken.append(deploy)
        return locked(deploy)

    monkeypatch.setattr(writer, "locked", spy)
    result = kkc(repo, "build", "site-k")
    assert result.exit_code == 0, result.output
    assert taken == [repo / "deploy"]
    assert (repo / "deploy" / "site-k" / "stages" / "identity" / "site-patches").is_dir()
    # nothing of the staging is left beside deploy/site-k/
    assert sorted(p.name for p in (repo / "deploy").iterdir()) == ["site-k"]


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts the calls of every service's render function, by (site, service)."""
    counts: Counter = Counter()

    def counting(name: str, render):
        def call(site):
            counts[(site.name, name)] += 1
            return render(site)

        return call

    for name, render in list(services.SERVICES.items()):
        monkeypatch.setitem(services.SERVICES, name, counting(name, render))
    return counts


COMMANDS = [
    ("render", "site-k"),
    ("build", "site-k"),
    ("build", "site-k", "--commit"),
    ("diff", "site-k"),
    ("check", "site-k"),
    ("lint", "site-k"),
    ("show", "site-k"),
    ("show", "site-k", "--explain", "config.keystone.DEFAULT.debug"),
    ("secrets", "site-k"),
    ("bootstrap", "site-k"),
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_each_command_renders_each_service_once(built: Path, kkc, renders, args) -> None:
    result = kkc(built, *args)
    assert result.exit_code == 0, result.output
    # the enabled services (keystone, and the infrastructure the defaults enable), once each
    enabled = ("mariadb", "rabbitmq", "memcached", "keystone")
    assert renders == {("site-k", s): 1 for s in enabled}


def test_overrides_and_patches_reach_the_output_computed_once(built: Path) -> None:
    site_dir = built / "deploy" / "site-k"
    conf = site_dir / "stages" / "identity" / "config" / "keystone-api-kolla" / "keystone.conf"
    assert "debug = true" in conf.read_text()
    kust = (site_dir / "stages" / "identity" / "kustomization.yaml").read_text()
    assert "site-patches/annotate.yaml" in kust


def test_scratch_links_keep_the_root_only_load_restrictor(repo: Path, kkc) -> None:
    """A base that loads a file from beyond its own directory fails as it does in deploy/,
    the paths named relative to the repository (never the scratch directory's)."""
    kust = repo / "base" / "keystone" / "db" / "kustomization.yaml"
    kust.write_text(
        kust.read_text().replace(
            "keystone-keys.py=scripts/keystone-keys.py",
            "keystone-keys.py=../../common/db/kustomization.yaml",
        )
    )
    result = kkc(repo, "render", "site-k")
    assert result.exit_code == 3, result.output
    assert (
        "loading KV pairs: file sources: [keystone-keys.py=../../common/db/kustomization.yaml]: "
        "security; file 'base/common/db/kustomization.yaml' is not in or below "
        "'base/keystone/db'\n"
    ) in result.stderr
    assert "kkc-render-" not in result.stderr and str(repo) not in result.stderr
    assert not (repo / "deploy").exists()


def test_lint_renders_the_site_and_each_overlay_variant_once(
    repo: Path, kkc, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KKC129 resolves the site once more without each overlay: that variant is a site of
    its own, rendered once; the site itself is rendered once."""
    site = repo / "sites" / "site-k" / "site.yaml"
    site.write_text(SITE_K + "overlays: [ingress]\n")
    counts: Counter = Counter()
    keystone = services.SERVICES["keystone"]

    def counting(s):
        counts[tuple(s.get("overlays") or ())] += 1
        return keystone(s)

    monkeypatch.setitem(services.SERVICES, "keystone", counting)
    result = kkc(repo, "lint", "site-k")
    assert result.exit_code == 0, result.output
    assert counts == {("ingress",): 1, (): 1}


def test_the_render_cache_belongs_to_the_site_object(repo: Path, renders: Counter) -> None:
    """A loaded site's services are rendered once (while loading, for the override
    targets) however often their outputs are asked for; a changed copy
    (dataclasses.replace) does not inherit them and renders anew."""
    site = load_site(repo, "site-k")
    for _ in range(3):
        overrides.service_outputs(site)
    assert renders[("site-k", "keystone")] == 1
    copy = dataclasses.replace(site, data={**site.data, "region": "K2"})
    overrides.service_outputs(copy)
    assert renders[("site-k", "keystone")] == 2
