"""The cache of rendered sites (kkc.sitecache): an unchanged site is read back without
rendering, kustomize or validation, with the same bytes; each kind of input invalidates
it, for exactly the sites it concerns."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from helpers import keystone_repo, write
from kkc import cache, kustomize, pipeline, sitecache
from kkc.loader import load_site

ENGINE = kustomize.find_engine()


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KKC_CACHE_DIR", str(tmp_path / "cache"))
    return keystone_repo(tmp_path / "repo")


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sites whose services were computed (a cache miss renders)."""
    seen: list[str] = []
    real = pipeline.compute

    def counting(site):
        seen.append(site.name)
        return real(site)

    monkeypatch.setattr(pipeline, "compute", counting)
    cache.use(True)  # patching turned the caches off (conftest): these tests are about them
    return seen


def _render(root: Path, name: str = "site-k", crd_dir: str | None = None) -> pipeline.Rendered:
    return pipeline.render(root, load_site(root, name), crd_dir)


def test_a_hit_gives_the_same_result_without_rendering(root: Path, renders: list[str]) -> None:
    first = _render(root)
    again = _render(root)
    assert renders == ["site-k"]
    assert (again.tree, again.manifests, again.objects) == (
        first.tree,
        first.manifests,
        first.objects,
    )
    assert [str(w) for w in again.warnings] == [str(w) for w in first.warnings]


SITE = "sites/site-k/site.yaml"
CHANGES = {
    "the site definition": lambda r, mp: _edit(r, SITE, "3600", "1800"),
    "a comment that moves lines": lambda r, mp: _edit(r, SITE, "schemaVersion", "#\nschemaVersion"),
    "the Kubernetes version": lambda r, mp: _append(r, SITE, 'kubernetes:\n  version: "1.32"\n'),
    "the fleet defaults": lambda r, mp: _edit(r, "sites/defaults.yaml", "refreshInterval: 1h", "refreshInterval: 2h"),
    "a base file the site uses": lambda r, mp: _append(r, "base/keystone/identity/kustomization.yaml", "# changed\n"),
    "a config file": lambda r, mp: write(r, "sites/site-k/config/keystone.conf", "[DEFAULT]\ndebug = true\n"),
    "kkc's code": lambda r, mp: mp.setattr(sitecache, "code_digest", lambda: "another kkc"),
    "the kustomize engine": lambda r, mp: mp.setattr(
        sitecache.kustomize, "find_engine", lambda: replace(ENGINE, version="9.9.9")
    ),
}  # fmt: skip


@pytest.mark.parametrize("what", CHANGES)
def test_each_kind_of_input_invalidates_the_entry(
    root: Path, renders: list[str], what: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _render(root)
    CHANGES[what](root, monkeypatch)
    cache.use(True)
    _render(root)
    assert renders == ["site-k", "site-k"], what


def test_a_base_only_another_site_uses_keeps_the_entry(root: Path, renders: list[str]) -> None:
    """A changed base misses for the sites whose build read it: keystone-only sites do
    not read nova's base."""
    _render(root)
    _append(root, "base/nova/services/kustomization.yaml", "# changed\n")
    _render(root)
    assert renders == ["site-k"]


def test_a_crd_dir_is_part_of_the_key(root: Path, renders: list[str], tmp_path: Path) -> None:
    crds = tmp_path / "crds"
    crds.mkdir()
    _render(root)
    _render(root, crd_dir=str(crds))
    write(crds, "extra.yaml", "# not a CRD\n")
    _render(root, crd_dir=str(crds))
    assert renders == ["site-k"] * 3


def test_no_cache_renders_every_time_and_stores_nothing(
    root: Path, renders: list[str], tmp_path: Path
) -> None:
    cache.use(False)
    try:
        _render(root)
        _render(root)
    finally:
        cache.use(True)
    assert renders == ["site-k", "site-k"]
    assert not (tmp_path / "cache" / "site").exists()


def test_a_corrupt_entry_is_a_miss(root: Path, renders: list[str], tmp_path: Path) -> None:
    _render(root)
    for entry in (tmp_path / "cache" / "site").rglob("*"):
        if entry.is_file():
            entry.write_bytes(entry.read_bytes()[:-10])
    again = _render(root)
    assert renders == ["site-k", "site-k"] and again.objects


def _edit(root: Path, rel: str, old: str, new: str, before: str = "") -> None:
    text = (root / rel).read_text()
    assert old in text
    write(root, rel, before + text.replace(old, new, 1))


def _append(root: Path, rel: str, text: str) -> None:
    write(root, rel, (root / rel).read_text() + text)
