"""kkc's cache of kustomize builds (kkc.cache, kkc.kustomize.inputs_key): a hit gives the
bytes the real kustomize gave; every input a build reads changes the key; corrupt entries
are misses; the cache is bounded, can be bypassed and emptied, and never sits in a repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import commit, write
from kkc import cache, kustomize, proc

KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: demo
resources:
- ../base
- extra.yaml
components:
- ../component
configMapGenerator:
- name: settings
  files:
  - app.conf=files/app.conf
patches:
- path: patch.yaml
"""


def _tree(root: Path) -> Path:
    """A site-like tree: a top kustomization over a base, a component with its own patch,
    a generator file named as key=path, a patch file and files kustomize never reads."""
    write(root, "site/kustomization.yaml", KUSTOMIZATION)
    write(root, "site/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n")
    write(root, "site/files/app.conf", "[DEFAULT]\ndebug = false\n")
    write(
        root,
        "site/patch.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: '1'\n",
    )
    write(root, "site/README.md", "not read by kustomize\n")
    write(root, "base/kustomization.yaml", "resources:\n- cm.yaml\n")
    write(root, "base/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: base\n")
    write(
        root,
        "component/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n"
        "- path: label.yaml\n",
    )
    write(
        root,
        "component/label.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: base\n  labels:\n    c: 'on'\n",
    )
    return root / "site"


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "cache"
    monkeypatch.setenv("KKC_CACHE_DIR", str(where))
    return where


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The kustomize processes started."""
    started: list[list[str]] = []
    real = proc.run
    prefix = list(kustomize.find_engine().build_argv)

    def counting(argv, **kw):
        if list(argv[: len(prefix)]) == prefix:
            started.append(list(argv))
        return real(argv, **kw)

    monkeypatch.setattr(kustomize.proc, "run", counting)
    cache.use(True)  # patching turned the caches off (conftest): these tests are about them
    return started


def _entries(where: Path) -> list[Path]:
    return sorted(p for p in (where / "kustomize").rglob("*") if p.is_file())


def test_a_hit_gives_the_bytes_kustomize_gave_without_running_it(tmp_path, own_cache, builds):
    site = _tree(tmp_path / "t")
    first = kustomize.build(site, "site/kustomization.yaml")
    assert len(builds) == 1 and "name: settings-" in first and 'c: "on"' in first, first
    assert kustomize.build(site, "site/kustomization.yaml") == first
    assert len(builds) == 1
    # the same tree elsewhere (another scratch directory) is the same entry
    moved = _tree(tmp_path / "elsewhere")
    assert kustomize.build(moved, "x") == first and len(builds) == 1
    assert len(_entries(own_cache)) == 1


@pytest.mark.parametrize(
    "rel",
    [
        "site/kustomization.yaml",  # the kustomization itself
        "site/extra.yaml",  # a resource file
        "site/files/app.conf",  # a generator file named key=path
        "site/patch.yaml",  # a patch
        "base/cm.yaml",  # a file of a base, through ../base
        "component/label.yaml",  # a component's own patch
    ],
)
def test_every_file_a_build_reads_changes_the_key(tmp_path, own_cache, rel):
    site = _tree(tmp_path / "t")
    engine = kustomize.find_engine()
    before = kustomize.inputs_key(site, engine)
    path = tmp_path / "t" / rel
    path.write_text(path.read_text() + "# changed\n")
    assert kustomize.inputs_key(site, engine) != before


def test_a_file_no_kustomization_names_does_not_change_the_key(tmp_path, own_cache):
    site = _tree(tmp_path / "t")
    engine = kustomize.find_engine()
    before = kustomize.inputs_key(site, engine)
    write(tmp_path / "t", "site/README.md", "edited\n")
    write(tmp_path / "t", "site/.kkc-files", "{}\n")
    assert kustomize.inputs_key(site, engine) == before


def test_another_kustomize_is_another_key(tmp_path, own_cache):
    site = _tree(tmp_path / "t")
    engine = kustomize.find_engine()
    other = kustomize.Engine(engine.build_argv, "5.99.0", engine.source)
    assert kustomize.inputs_key(site, engine) != kustomize.inputs_key(site, other)


def test_a_remote_resource_is_never_cached(tmp_path, own_cache):
    site = _tree(tmp_path / "t")
    text = KUSTOMIZATION.replace("- extra.yaml", "- https://example.invalid/x.yaml")
    write(tmp_path / "t", "site/kustomization.yaml", text)
    assert kustomize.inputs_key(site, kustomize.find_engine()) is None


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_a_corrupt_entry_is_a_miss_and_is_replaced(tmp_path, own_cache, builds, damage):
    site = _tree(tmp_path / "t")
    good = kustomize.build(site, "x")
    [entry] = _entries(own_cache)
    raw = entry.read_bytes()
    broken = {
        "truncate": raw[: len(raw) // 2],
        "flip": raw[:-1] + bytes([raw[-1] ^ 1]),
        "empty": b"",
    }[damage]
    entry.write_bytes(broken)
    assert kustomize.build(site, "x") == good
    assert len(builds) == 2
    assert kustomize.build(site, "x") == good and len(builds) == 2


def test_a_failed_build_is_not_cached(tmp_path, own_cache, builds):
    site = _tree(tmp_path / "t")
    write(tmp_path / "t", "site/extra.yaml", "kind: [\n")
    for _ in range(2):
        with pytest.raises(kustomize.OutputInvalid):
            kustomize.build(site, "x")
    assert len(builds) == 2 and _entries(own_cache) == []


def test_the_cache_is_bounded_least_recently_used_first(own_cache, monkeypatch):
    monkeypatch.setenv("KKC_CACHE_MAX_MB", "1")
    blob = os.urandom(400 * 1024)  # does not compress
    for i, key in enumerate(["aa1", "bb2"]):
        cache.put("kustomize", key, blob)
        os.utime(own_cache / "kustomize" / key[:2] / key, ns=(i * 10**9, i * 10**9))
    assert cache.get("kustomize", "aa1") == blob  # used now: the newest
    cache.put("kustomize", "cc3", blob)  # 1.2 MB: the least recently used goes
    assert [p.name for p in _entries(own_cache)] == ["aa1", "cc3"]


def test_no_cache_reads_and_writes_nothing(tmp_path, own_cache, builds, kkc, small_site_repo):
    result = kkc(small_site_repo, "--no-cache", "render", "site-k")
    assert result.exit_code == 0, result.output
    assert not own_cache.exists()
    cache.use(True)  # the next command is a new process, without --no-cache
    assert kkc(small_site_repo, "render", "site-k").stdout == result.stdout
    assert len(_entries(own_cache)) == 1


def test_diff_of_an_unchanged_site_runs_kustomize_once(own_cache, builds, kkc, small_site_repo):
    assert kkc(small_site_repo, "build", "site-k").exit_code == 0
    commit(small_site_repo, ["deploy"], "output")
    builds.clear()
    result = kkc(small_site_repo, "diff", "site-k")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("site-k: no changes against HEAD")
    assert len(builds) == 0  # the rendered and the committed tree: the build's own entry
    # nothing of the cache is in the repository
    assert not any(".kkc" in p.name and p.is_dir() for p in small_site_repo.iterdir())


def test_cache_clean_empties_only_kkcs_areas(tmp_path, own_cache, kkc):
    site = _tree(tmp_path / "t")
    kustomize.build(site, "x")
    write(own_cache, "mine/keep.txt", "someone else's file\n")
    result = kkc(tmp_path, "cache", "clean")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{own_cache}: removed 1 entries (")
    assert _entries(own_cache) == [] and (own_cache / "mine/keep.txt").exists()
    assert kkc(tmp_path, "cache", "clean").stdout.startswith(f"{own_cache}: removed 0 entries")


def test_doctor_says_where_the_cache_is(tmp_path, own_cache, kkc, monkeypatch):
    line = [ln for ln in kkc(tmp_path, "doctor").stdout.splitlines() if ln.startswith("cache ")]
    assert line == [f"{'cache':20} {own_cache} (0 entries, 0.0 MB; `kkc cache clean` empties it)"]
    monkeypatch.setenv("KKC_NO_CACHE", "1")
    assert f"{own_cache} (bypassed: KKC_NO_CACHE)" in kkc(tmp_path, "doctor").stdout
