"""Progress of the fleet commands (kkc.progress): per-site lines on stderr when it is not a
terminal, a Rich bar when it is, nothing with -o json or for one site; a summary line."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import make_small_repo
from kkc import progress

LINE = re.compile(
    r"^kkc (\w+): \[(\d+)/(\d+)\] (site-\w) (ok|ok, cached|failed|does not load) \(\d+\.\d s\)$"
)
SUMMARY = re.compile(
    r"^kkc (\w+): (\d+) sites, (\d+) ok \((\d+) cached\), (\d+) failed, \d+\.\d s$"
)


@contextlib.contextmanager
def monkeypatch_cache(root: Path) -> Iterator[None]:
    """A cache of kustomize builds of this test alone, empty at first."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KKC_CACHE_DIR", str(root.parent / "cache"))
        yield


@pytest.fixture
def plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KKC_PROGRESS", "plain")


def _parsed(stderr: str) -> list[tuple[str, ...]]:
    out = []
    for line in stderr.splitlines():
        m = LINE.match(line) or SUMMARY.match(line)
        assert m, line
        out.append(m.groups())
    return out


def test_a_line_per_site_in_site_order_then_a_summary(
    small_site_repo: Path, kkc, plain: None
) -> None:
    with monkeypatch_cache(small_site_repo):
        result = kkc(small_site_repo, "lint", "--all")
        assert result.exit_code == 0, result.output
        assert _parsed(result.stderr) == [
            ("lint", "1", "2", "site-k", "ok"),
            ("lint", "2", "2", "site-l", "ok"),
            ("lint", "2", "2", "0", "0"),
        ]
        again = kkc(small_site_repo, "lint", "--all")  # every kustomize build in the cache
        assert _parsed(again.stderr) == [
            ("lint", "1", "2", "site-k", "ok, cached"),
            ("lint", "2", "2", "site-l", "ok, cached"),
            ("lint", "2", "2", "2", "0"),
        ]
    assert (
        result.stdout
        == "site-k: 32 objects valid, 0 warnings\nsite-l: 28 objects valid, 0 warnings\n"
    )


def test_failures_are_counted_and_json_and_one_site_show_nothing(
    tmp_path: Path, kkc, plain: None
) -> None:
    root = make_small_repo(tmp_path / "repo")
    path = root / "sites/site-k/site.yaml"
    path.write_text(path.read_text().replace("replicas: 3", "replicas: -1"))
    result = kkc(root, "build", "--all")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    parsed = _parsed("\n".join(lines[:3]))
    assert [p[:4] for p in parsed[:2]] == [
        ("build", "1", "2", "site-k"),
        ("build", "2", "2", "site-l"),
    ]
    assert parsed[0][4] == "does not load" and parsed[1][4] in ("ok", "ok, cached")
    assert parsed[2][:3] == ("build", "2", "1") and parsed[2][4] == "1"
    assert lines[3].startswith("sites/site-k/site.yaml:")  # then the problems
    result = kkc(root, "build", "--all", "-o", "json")
    assert (result.exit_code, result.stderr) == (2, "")
    result = kkc(root, "check", "site-l")  # one site: no progress, only the verdict
    assert (result.exit_code, result.stderr) == (1, "kkc check: 1 problem in site-l\n")


def test_off_prints_nothing(small_site_repo: Path, kkc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KKC_PROGRESS", "0")
    result = kkc(small_site_repo, "lint", "--all")
    assert (result.exit_code, result.stderr) == (0, "")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KKC_PROGRESS", "auto")
    stream = _Terminal()
    assert isinstance(progress.choose("build", quiet=True, stream=stream), progress.Quiet)
    assert isinstance(progress.choose("build", quiet=False, stream=io.StringIO()), progress.Lines)
    bar = progress.choose("build", quiet=False, stream=stream)
    assert isinstance(bar, progress.Bar)
    with progress.reporting(bar):
        assert progress.current() is bar
        bar.plan(["site-a", "site-b", "site-c"])
        bar.load_failed("site-c")
        bar.begin(["site-a", "site-b"])
        bar.done(0, True)
        bar.done(1, False)
    assert progress.current() is not bar
    shown = stream.getvalue()
    assert "kkc build site-a " in shown and "0/2" in shown and "2/2" in shown  # site, done/total
    last = shown.splitlines()[-1].split("\x1b[2K")[-1]  # after the bar is erased
    assert SUMMARY.match(last).groups() == ("build", "3", "1", "0", "2"), last
    monkeypatch.setenv("KKC_PROGRESS", "plain")
    assert isinstance(progress.choose("build", quiet=False, stream=stream), progress.Lines)
