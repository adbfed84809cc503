"""`kkc affected --since REV`: the sites whose inputs differ between REV and the work
tree, in a real git repository: a site's directory, the fleet defaults, the overlays it
lists, exactly the bases its tree uses, kkc's data per release, a shared AppProject."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest

from conftest import make_small_repo, snapshot
from helpers import commit, write
from kkc import affected


@pytest.fixture
def fleet(tmp_path: Path, kkc) -> Path:
    """site-k (2026.1, overlay monitoring), site-l (2025.1), site-m (keystone and glance,
    from `kkc init`), committed."""
    root = make_small_repo(tmp_path / "repo")
    path = root / "sites/site-k/site.yaml"
    path.write_text(path.read_text() + "overlays: [monitoring]\n")
    result = kkc(root, "init", "site-m", "--services", "keystone,glance")
    assert result.exit_code == 0, result.output
    commit(root, ["sites"], "site-m; site-k monitored")
    return root


def _affected(kkc, root: Path, since: str = "HEAD") -> list[str]:
    result = kkc(root, "affected", "--since", since)
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    return result.stdout.splitlines()


def _touch(root: Path, rel: str) -> None:
    path = root / rel
    path.write_text(path.read_text() + "# changed\n")


def test_nothing_changed_nothing_affected_and_nothing_written(fleet: Path, kkc) -> None:
    before = snapshot(fleet)
    assert _affected(kkc, fleet) == []
    _touch(fleet, "sites/site-l/site.yaml")
    before = snapshot(fleet)
    assert _affected(kkc, fleet) == ["site-l"]
    assert snapshot(fleet) == before  # not even the index


def test_a_site_directory_and_untracked_files_in_it(fleet: Path, kkc) -> None:
    _touch(fleet, "sites/site-k/site.yaml")
    write(fleet, "sites/site-l/config/keystone.conf", "[DEFAULT]\ndebug = true\n")
    assert _affected(kkc, fleet) == ["site-k", "site-l"]
    result = kkc(fleet, "affected", "--since", "HEAD", "-o", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["sites"] == [
        {"site": "site-k", "reasons": ["sites/site-k/site.yaml"]},
        {"site": "site-l", "reasons": ["sites/site-l/config/keystone.conf"]},
    ]
    assert report["commit"] == git.Repo(fleet).head.commit.hexsha
    assert report["changed"] == ["sites/site-k/site.yaml", "sites/site-l/config/keystone.conf"]
    assert report["removed"] == []


def test_the_fleet_defaults_affect_every_site(fleet: Path, kkc) -> None:
    _touch(fleet, "sites/defaults.yaml")
    assert _affected(kkc, fleet) == ["site-k", "site-l", "site-m"]


@pytest.mark.parametrize(
    ("rel", "sites"),
    [
        ("base/glance/services/glance-api-deployment.yaml", ["site-m"]),
        ("base/keystone/identity/keystone-api-deployment.yaml", ["site-k", "site-l", "site-m"]),
        ("base/nova/services/kustomization.yaml", []),
        ("overlays/monitoring/defaults.yaml", ["site-k"]),
        ("overlays/ha/defaults.yaml", []),
    ],
)
def test_a_base_or_overlay_lists_exactly_the_sites_using_it(
    fleet: Path, kkc, rel: str, sites: list[str]
) -> None:
    _touch(fleet, rel)
    assert _affected(kkc, fleet) == sites


def test_since_a_commit_counts_commits_and_the_work_tree(fleet: Path, kkc) -> None:
    first = git.Repo(fleet).head.commit.hexsha
    _touch(fleet, "sites/site-l/site.yaml")
    commit(fleet, ["sites/site-l/site.yaml"], "site-l changed")
    assert _affected(kkc, fleet) == []
    assert _affected(kkc, fleet, first[:12]) == ["site-l"]
    _touch(fleet, "base/glance/services/glance-api-service.yaml")
    assert _affected(kkc, fleet, "HEAD~1") == ["site-l", "site-m"]


def test_a_removed_site_is_a_note(fleet: Path, kkc) -> None:
    git.Repo(fleet).git.rm("-r", "-q", "sites/site-l")
    result = kkc(fleet, "affected", "--since", "HEAD")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == (
        "kkc affected: site site-l removed since HEAD (`kkc build --all` removes deploy/site-l/)\n"
    )
    report = json.loads(kkc(fleet, "affected", "--since", "HEAD", "-o", "json").stdout)
    assert (report["sites"], report["removed"]) == ([], ["site-l"])


def test_the_sites_of_a_shared_appproject(fleet: Path, kkc) -> None:
    """site-n joins site-k's AppProject: a change to site-n (or site-n itself, new) may
    change the AppProject site-k renders."""
    text = (fleet / "sites/site-l/site.yaml").read_text()
    text = text.replace("site-l", "site-n").replace(
        "engine: flux", "engine: argocd\n  project: site-k"
    )
    write(fleet, "sites/site-n/site.yaml", text)
    result = kkc(fleet, "affected", "--since", "HEAD", "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sites"] == [
        {"site": "site-k", "reasons": ["shares AppProject argocd/site-k with site-n"]},
        {"site": "site-n", "reasons": ["sites/site-n/site.yaml"]},
    ]
    commit(fleet, ["sites/site-n"], "site-n")
    git.Repo(fleet).git.rm("-r", "-q", "sites/site-n")
    assert _affected_with_notes(kkc, fleet) == ["site-k"]


def _affected_with_notes(kkc, root: Path) -> list[str]:
    result = kkc(root, "affected", "--since", "HEAD")
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_kkc_data_of_a_release_affects_the_sites_of_that_release(
    fleet: Path, kkc, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When kkc's package lies inside the site repository (kkc's own reference repository),
    a release's option catalog or Kolla data affects that release's sites, any other change
    of the package every site."""
    package = fleet / "compiler/kkc"
    for rel in ("data/catalogs/2026.1.json.gz", "data/kolla/2025.1.json", "cli.py"):
        write(package, rel, "x\n")
    commit(fleet, ["compiler"], "kkc itself")
    monkeypatch.setattr(affected, "PACKAGE", package)
    _touch(fleet, "compiler/kkc/data/catalogs/2026.1.json.gz")
    assert _affected(kkc, fleet) == ["site-k"]  # site-l and site-m are on 2025.1
    git.Repo(fleet).git.checkout("--", "compiler")
    _touch(fleet, "compiler/kkc/data/kolla/2025.1.json")
    assert _affected(kkc, fleet) == ["site-l", "site-m"]
    _touch(fleet, "compiler/kkc/cli.py")
    assert _affected(kkc, fleet) == ["site-k", "site-l", "site-m"]


def test_a_site_that_does_not_load_is_affected_by_any_shared_change(fleet: Path, kkc) -> None:
    path = fleet / "sites/site-l/site.yaml"
    path.write_text(path.read_text().replace("region: L1", "region: [L1"))
    commit(fleet, ["sites/site-l/site.yaml"], "site-l broken")
    assert _affected(kkc, fleet) == []
    _touch(fleet, "base/glance/services/glance-api-service.yaml")
    result = kkc(fleet, "affected", "--since", "HEAD", "-o", "json")
    assert [
        (s["site"], s["reasons"][0].split(" (")[0]) for s in json.loads(result.stdout)["sites"]
    ] == [
        ("site-l", "does not load now"),
        ("site-m", "base/glance/services/glance-api-service.yaml"),
    ]


def test_bad_revision_and_no_repository(fleet: Path, kkc, tmp_path: Path) -> None:
    result = kkc(fleet, "affected", "--since", "nope")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "<command line>:1:1: KKC170 --since nope: no such git revision\n"
    result = kkc(fleet, "affected")
    assert result.exit_code == 2
    assert "--since" in result.stderr
    plain = tmp_path / "plain"
    (plain / "sites").mkdir(parents=True)
    result = kkc(plain, "affected", "--since", "HEAD")
    assert result.exit_code == 4
    assert "is not inside a git repository" in result.stderr
