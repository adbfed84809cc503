"""kkc init: a commented site.yaml that builds at once with no warning; never overwrites a
site; --from, --services and --engine; bad inputs refused with one located line (exit 2)
and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import snapshot
from helpers import write
from kkc import scaffold
from kkc.yamlio import load_mapping

NEXT = [
    "next:",
    "  edit sites/site-m/site.yaml (host names, region: docs/site-definition.md) or kkc set site-m",
    "  kkc build site-m                # compile and validate deploy/site-m/",
    "  kkc diff site-m                 # the rendered objects against the committed output",
    '  git add sites/site-m && git commit -m "Add site-m" && kkc build site-m --commit',
    "  kkc bootstrap site-m | kubectl apply -f -   # once, after the merge",
]


def test_init_then_build_with_no_warning(small_site_repo: Path, kkc):
    r = kkc(small_site_repo, "init", "site-m", "--services", "keystone", "--engine", "flux")
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    assert r.stdout.splitlines() == [
        "site-m: wrote sites/site-m/site.yaml (a new site; OpenStack 2025.1 from "
        "sites/defaults.yaml; services: keystone)",
        *NEXT,
    ]
    text = (small_site_repo / "sites/site-m/site.yaml").read_text()
    assert text.startswith("# site-m: site definition (docs/site-definition.md).")
    assert "# openstack.release: the one sites/defaults.yaml pins" in text
    assert "  engine: flux\n" in text
    assert (small_site_repo / "sites/site-m/site.yaml").stat().st_mode & 0o777 == 0o644
    b = kkc(small_site_repo, "build", "site-m")
    assert b.exit_code == 0, b.output
    assert b.stderr == ""  # no warning
    assert (small_site_repo / "deploy/site-m/.kkc-files").is_file()


@pytest.mark.slow
def test_default_services_build_with_no_warning(small_site_repo: Path, kkc):
    r = kkc(small_site_repo, "init", "site-m", "--release", "2026.2")
    assert r.exit_code == 0, r.output
    assert "OpenStack 2026.2 from --release; services: keystone, glance, placement, nova, " in (
        r.stdout
    )
    assert '  release: "2026.2"\n' in (small_site_repo / "sites/site-m/site.yaml").read_text()
    b = kkc(small_site_repo, "build", "site-m")
    assert (b.exit_code, b.stderr) == (0, ""), b.output


def test_init_never_overwrites(small_site_repo: Path, kkc):
    before = snapshot(small_site_repo)
    r = kkc(small_site_repo, "init", "site-k")
    assert r.exit_code == 2
    assert r.stderr.splitlines() == [
        'sites/site-k/site.yaml:1:1: KKC147 site "site-k" already exists (site.yaml); kkc init '
        "never overwrites a site: choose another name, or edit it with "
        "`kkc set site-k PATH=VALUE`"
    ]
    (small_site_repo / "sites/site-x").mkdir()
    r = kkc(small_site_repo, "init", "site-x")
    assert r.exit_code == 2
    assert r.stderr.startswith('sites/site-x:1:1: KKC147 site "site-x" already exists (directory)')
    (small_site_repo / "sites/site-x").rmdir()
    assert snapshot(small_site_repo) == before


def test_init_from_copies_renamed_and_builds(small_site_repo: Path, kkc):
    r = kkc(small_site_repo, "init", "site-m", "--from", "site-l", "-o", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {
        "site": "site-m",
        "file": "sites/site-m/site.yaml",
        "release": "2025.1",
        "releaseFrom": "sites/site-l/site.yaml",
        "services": ["keystone"],
        "dependencies": [],
        "from": "site-l",
    }
    source = (small_site_repo / "sites/site-l/site.yaml").read_text()
    text = (small_site_repo / "sites/site-m/site.yaml").read_text()
    assert text == (
        source.replace("# site-l:", "# site-m (from site-l):")
        .replace("name: site-l", "name: site-m")
        .replace("region: L1", "region: SITE-M")
        .replace("keystone.l.example.com", "keystone.site-m.l.example.com")
    )
    b = kkc(small_site_repo, "build", "site-m")
    assert (b.exit_code, b.stderr) == (0, ""), b.output


def test_init_from_copies_config_and_patches(small_site_repo: Path, kkc):
    ini = "[DEFAULT]\ndebug = true\n"
    write(small_site_repo, "sites/site-l/config/keystone.conf", ini)
    r = kkc(small_site_repo, "init", "site-m", "--from", "site-l")
    assert r.exit_code == 0, r.output
    assert (small_site_repo / "sites/site-m/config/keystone.conf").read_text() == ini
    assert not (small_site_repo / "sites/site-m/patches").exists()


def test_init_from_with_release_and_engine(small_site_repo: Path, kkc):
    r = kkc(
        small_site_repo,
        "init",
        "site-m",
        "--from",
        "site-k",
        "--release",
        "2026.2",
        "--engine",
        "flux",
    )
    assert r.exit_code == 0, r.output
    doc = load_mapping(small_site_repo / "sites/site-m/site.yaml", "site.yaml")
    assert doc["openstack"]["release"] == "2026.2"
    assert doc["gitops"]["engine"] == "flux"
    assert doc["region"] == "SITE-M"


def test_services_bring_their_dependencies(small_site_repo: Path, kkc):
    r = kkc(small_site_repo, "init", "site-m", "--services", "nova,rabbitmq", "-o", "json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["services"] == ["keystone", "glance", "placement", "nova", "neutron"]
    assert report["dependencies"] == ["glance", "placement", "neutron"]
    doc = load_mapping(small_site_repo / "sites/site-m/site.yaml", "site.yaml")
    assert sorted(doc["services"]) == ["glance", "neutron", "nova", "placement"]
    assert sorted(doc["endpoints"]["hosts"]) == [
        "glance",
        "keystone",
        "neutron",
        "nova",
        "novncproxy",
        "placement",
    ]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--release", "2026.3"],
            'KKC148 unknown OpenStack release "2026.3"; did you mean "2026.2"? '
            "(valid: 2025.1, 2026.1, 2026.2)",
        ),
        (
            ["--engine", "fluxcd"],
            'KKC148 unknown GitOps engine "fluxcd"; did you mean "flux"? (valid: argocd, flux)',
        ),
        (
            ["--services", "keystone,cindr"],
            'KKC148 unknown service "cindr"; did you mean "cinder"? (valid: keystone, glance, '
            "placement, nova, neutron, cinder, heat, horizon, mariadb, rabbitmq, memcached)",
        ),
        (
            ["--from", "site-q"],
            'KKC148 unknown site "site-q"; did you mean "site-l"? (valid: site-k, site-l)',
        ),
        (
            ["--from", "site-k", "--services", "glance"],
            "KKC148 --services applies to a new site; with --from, use kkc set",
        ),
    ],
)
def test_bad_inputs_write_nothing(small_site_repo: Path, kkc, args, line):
    before = snapshot(small_site_repo)
    r = kkc(small_site_repo, "init", "site-m", *args)
    assert r.exit_code == 2
    assert r.stderr.splitlines() == [f"<command line>:1:1: {line}"]
    assert snapshot(small_site_repo) == before


def test_bad_site_name(small_site_repo: Path, kkc):
    r = kkc(small_site_repo, "init", "Site_M")
    assert r.exit_code == 2
    assert r.stderr.startswith('<command line>:1:1: KKC122 site name "Site_M" is not a DNS-1123')


def test_no_release_is_a_decision_not_a_default(small_site_repo: Path, kkc):
    defaults = small_site_repo / "sites/defaults.yaml"
    defaults.write_text(defaults.read_text().replace('  release: "2025.1"', "  # no release"))
    assert scaffold.fleet_release(small_site_repo) is None
    before = snapshot(small_site_repo)
    r = kkc(small_site_repo, "init", "site-m")
    assert r.exit_code == 2
    assert r.stderr.splitlines() == [
        "<command line>:1:1: KKC149 no OpenStack release: pass --release (supported: 2025.1, "
        "2026.1, 2026.2); sites/defaults.yaml pins none, and kkc has no default because the "
        "release is a decision, never a default"
    ]
    assert snapshot(small_site_repo) == before
    r = kkc(small_site_repo, "init", "site-m", "--release", "2026.1", "--services", "keystone")
    assert r.exit_code == 0, r.output
    b = kkc(small_site_repo, "build", "site-m")
    assert (b.exit_code, b.stderr) == (0, ""), b.output


def test_a_site_that_does_not_load_is_not_left_behind(small_site_repo: Path, kkc, monkeypatch):
    monkeypatch.setattr(scaffold, "new_site_text", lambda *a: "schemaVersion: 2\n")
    before = snapshot(small_site_repo)
    r = kkc(small_site_repo, "init", "site-m")
    assert r.exit_code == 2
    assert "KKC116" in r.stderr or "KKC112" in r.stderr, r.stderr
    assert snapshot(small_site_repo) == before
