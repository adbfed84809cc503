"""kkc upgrade: the release facts, the path refusals (exit 2, one located line, nothing
written) and the accepted upgrade (site.yaml edited with its comments, the site built)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import snapshot
from kkc import upgrade, upgradepath
from kkc.catalog import _data_path
from kkc.releases import RELEASES

SITE_K = "sites/site-k/site.yaml"  # release "2026.1" on line 7, column 3
SITE_L = "sites/site-l/site.yaml"  # release "2025.1" on line 7


def test_facts_agree_with_the_supported_releases():
    facts = upgradepath.facts()
    assert facts.supported == tuple(sorted(RELEASES))
    assert facts.slurp == {"2024.1", "2025.1", "2026.1"}
    assert set(facts.rabbitmq) == set(RELEASES)
    for release in facts.supported:  # each has its option catalog
        assert _data_path(release).is_file()
    assert list(facts.series) == sorted(facts.series)


@pytest.mark.parametrize(
    ("current", "target", "problem"),
    [
        ("2025.1", "2026.1", None),
        ("2026.1", "2026.2", None),
        (
            "2025.1",
            "2026.2",
            "2025.1 -> 2026.2 skips 2025.2, 2026.1 (a SLURP release: a skip ends at the "
            "next SLURP release, 2026.1); upgrade to 2026.1 first",
        ),
        (
            "2025.1",
            "2025.2",
            'OpenStack release "2025.2" is not supported by kkc (supported: 2025.1, 2026.1, '
            "2026.2)",
        ),
        ("2026.1", "2026.1", "the site is already on 2026.1"),
        (
            "2026.2",
            "2026.1",
            "2026.2 -> 2026.1 is a downgrade: database migrations and RabbitMQ feature flags "
            "cannot be undone; restore the old release from a backup instead",
        ),
    ],
)
def test_paths(current, target, problem):
    assert upgradepath.path_problem(current, target) == problem


def test_a_skip_from_a_release_that_is_not_slurp_names_the_next_release(monkeypatch):
    facts = upgradepath.facts()
    monkeypatch.setattr(
        upgradepath,
        "facts",
        lambda: upgradepath.Facts(
            facts.series, facts.slurp, ("2024.2", "2025.1", "2026.2"), facts.rabbitmq, {}
        ),
    )
    assert upgradepath.path_problem("2024.2", "2026.2") == (
        "2024.2 -> 2026.2 skips 2025.1, 2025.2, 2026.1 (a SLURP release: a skip ends at the "
        "next SLURP release, 2025.1); 2024.2 is not a SLURP release; upgrade to 2025.1 first"
    )


def test_rabbitmq_ladder():
    assert upgradepath.rabbitmq_problem("2025.1", "2026.1") is None  # 4.0 -> 4.2: listed
    assert upgradepath.rabbitmq_problem("2026.1", "2026.2") is None  # 4.2 -> 4.3: one minor
    assert upgradepath.rabbitmq_problem("2025.1", "2026.2") == (
        "2025.1 -> 2026.2 moves RabbitMQ 4.0 -> 4.3, outside the allowed ladder (one minor "
        "version at a time, or from 4.0 to 4.1, 4.2); upgrade RabbitMQ to 4.2 first"
    )


def test_rabbitmq_version_of_an_image_and_the_ladder_of_versions():
    from kkc import safety

    assert safety.rabbitmq_version("quay.io/openstack.kolla/rabbitmq:2025.1-rocky-9") == "4.0"
    assert safety.rabbitmq_version("r:5000/kolla/rabbitmq-4-1:2025.1-rocky-9") == "4.1"
    assert safety.rabbitmq_version("docker.io/library/rabbitmq:3.13") is None  # not Kolla's
    assert safety.rabbitmq_version("quay.io/openstack.kolla/rabbitmq:master-rocky-9") is None
    assert upgradepath.ladder_problem("4.0", "4.2") is None  # listed
    assert upgradepath.ladder_problem("4.1", "4.2") is None  # one minor
    assert upgradepath.ladder_problem("4.1", "4.3") == (
        "moves RabbitMQ 4.1 -> 4.3, outside the allowed ladder (one minor version at a time, "
        "or no listed jump from 4.1); upgrade RabbitMQ to 4.2 first"
    )
    assert upgradepath.ladder_problem("4.2", "4.0").startswith(
        "moves RabbitMQ 4.2 -> 4.0, a downgrade"
    )


PIN = """\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: rabbitmq
spec:
  template:
    spec:
      containers:
        - name: rabbitmq
          image: registry.example.com/kolla/rabbitmq-4-1:2025.1-rocky-9
"""


def test_no_supported_upgrade_needs_an_intermediate_rabbitmq():
    """docs/upgrades.md's argument that every accepted upgrade is one desired state: for
    every path kkc allows, from every RabbitMQ image Kolla of the source release builds
    (its `rabbitmq`, and `rabbitmq-X-Y`, which a site patch may pin: KKC308 accepts no
    other) to the target's `rabbitmq`, the jump is on kolla-ansible's ladder."""
    from kkc import kollacheck, safety

    f = upgradepath.facts()
    jumps = []
    for current in f.supported:
        for target in f.supported:
            if upgradepath.refusal(current, target) is not None:
                continue
            for image in sorted(kollacheck.images(current)):
                if image == "rabbitmq" or image.startswith("rabbitmq-"):
                    was = safety.rabbitmq_version(f"r/{image}:{current}-rocky-9")
                    now = safety.rabbitmq_version(f"r/rabbitmq:{target}-rocky-9")
                    assert upgradepath.allowed_jump(was, now), (current, image, target)
                    jumps.append((current, was, target, now))
    assert jumps == [
        ("2025.1", "4.0", "2026.1", "4.2"),
        ("2025.1", "4.1", "2026.1", "4.2"),
        ("2026.1", "4.2", "2026.2", "4.3"),
    ]


@pytest.mark.slow
def test_the_rabbitmq_ladder_is_checked_on_the_image_the_output_runs(small_site_repo: Path, kkc):
    """A site patch may pin RabbitMQ to Kolla's extra image of its release (site-l on
    2025.1: rabbitmq-4-1, RabbitMQ 4.1 instead of 4.0), so the version no longer follows
    the release: dropping the pin on 2025.1 is a RabbitMQ downgrade (KKC195, from the
    images), and the upgrade to 2026.1 with the pin dropped is 4.1 -> 4.2 (allowed)."""
    path = small_site_repo / SITE_L
    path.write_text(
        path.read_text()
        .replace(
            "    keystone: keystone.l.example.com\n",
            "    keystone: keystone.l.example.com\n    heat: heat.l.example.com\n"
            "    heat-cfn: cfn.l.example.com\n",
        )
        .replace(
            "    tokenExpiration: 7200\n", "    tokenExpiration: 7200\n  heat:\n    enabled: true\n"
        )
    )
    pin = small_site_repo / "sites/site-l/patches/rabbitmq-pin.yaml"
    pin.parent.mkdir()
    pin.write_text(PIN)
    result = kkc(small_site_repo, "build", "site-l", "--commit")
    assert result.exit_code == 0, result.output
    pin.unlink()
    before = snapshot(small_site_repo / "deploy")
    result = kkc(small_site_repo, "build", "site-l")
    refused = (
        f"{SITE_L}:7:3: KKC195 StatefulSet/rabbitmq moves RabbitMQ 4.1 -> 4.0, a downgrade: "
        "an older RabbitMQ refuses to start on the feature flags the newer one enabled; keep "
        "RabbitMQ 4.1 until a release whose RabbitMQ is newer (image "
        "registry.example.com/kolla/rabbitmq-4-1:2025.1-rocky-9 -> "
        "registry.example.com/kolla/rabbitmq:2025.1-rocky-9)\n"
    )
    assert result.exit_code == 2 and result.stderr.startswith(refused), result.stderr
    assert snapshot(small_site_repo / "deploy") == before
    result = kkc(small_site_repo, "diff", "site-l", "--output", "json")
    found = json.loads(result.stdout)[0]["refusedReleaseChanges"]
    assert (result.exit_code, [p["code"] for p in found]) == (2, ["KKC195"])
    # the upgrade drops the pin (2026.1 builds no rabbitmq-4-1): RabbitMQ 4.1 -> 4.2
    result = kkc(small_site_repo, "upgrade", "site-l", "--to", "2026.1")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("site", "target", "line"),
    [
        (
            "site-l",
            "2026.2",
            f"{SITE_L}:7:3: KKC190 2025.1 -> 2026.2 skips 2025.2, 2026.1 (a SLURP release: a "
            "skip ends at the next SLURP release, 2026.1); upgrade to 2026.1 first",
        ),
        (
            "site-k",
            "2025.1",
            f"{SITE_K}:7:3: KKC190 2026.1 -> 2025.1 is a downgrade: database migrations and "
            "RabbitMQ feature flags cannot be undone; restore the old release from a backup "
            "instead",
        ),
        ("site-k", "2026.1", f"{SITE_K}:7:3: KKC190 the site is already on 2026.1"),
        (
            "site-k",
            "2025.2",
            f'{SITE_K}:7:3: KKC190 OpenStack release "2025.2" is not supported by kkc '
            "(supported: 2025.1, 2026.1, 2026.2)",
        ),
    ],
)
def test_refusals_write_nothing(small_site_repo: Path, kkc, site, target, line):
    before = snapshot(small_site_repo)
    result = kkc(small_site_repo, "upgrade", site, "--to", target)
    assert result.exit_code == 2, result.output
    assert result.stderr == line + "\n"
    assert result.stdout == ""
    assert snapshot(small_site_repo) == before


def test_rabbitmq_refusal_is_located(small_site_repo: Path, monkeypatch, kkc):
    facts = upgradepath.facts()
    ladder = upgradepath.Facts(
        facts.series, facts.slurp, facts.supported, {**facts.rabbitmq, "2026.1": "4.3"}, {}
    )
    monkeypatch.setattr(upgradepath, "facts", lambda: ladder)
    before = snapshot(small_site_repo)
    result = kkc(small_site_repo, "upgrade", "site-l", "--to", "2026.1")
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"{SITE_L}:7:3: KKC195 2025.1 -> 2026.1 moves RabbitMQ 4.0 -> 4.3, outside the "
        "allowed ladder (one minor version at a time, or no listed jump from 4.0); upgrade "
        "RabbitMQ to 4.1 first\n"
    )
    assert snapshot(small_site_repo) == before


def test_set_release_keeps_comments_and_layout():
    text = (
        "# head comment\n"
        "name: s  # trailing\n"
        "openstack:\n"
        "  release: '2025.1'   # the decision\n"
        "  distro: rocky\n"
        "services: {keystone: {enabled: true}}\n"
    )
    assert upgrade.set_release(text, "2026.1") == text.replace("'2025.1'", '"2026.1"')
    missing = text.replace("  release: '2025.1'   # the decision\n", "")
    assert upgrade.set_release(missing, "2026.1") == missing.replace(
        "openstack:\n", 'openstack:\n  release: "2026.1"\n'
    )
    assert upgrade.set_release("# c\nname: s\n", "2026.1") == (
        '# c\nname: s\nopenstack:\n  release: "2026.1"\n'
    )


def test_upgrade_edits_the_site_and_builds(small_site_repo: Path, kkc):
    path = small_site_repo / SITE_L
    before = path.read_text()
    result = kkc(small_site_repo, "upgrade", "site-l", "--to", "2026.1")
    assert result.exit_code == 0, result.output
    assert path.read_text() == before.replace('release: "2025.1"', 'release: "2026.1"')
    lines = result.stdout.splitlines()
    assert lines[0] == f"site-l: openstack.release 2025.1 -> 2026.1 in {SITE_L}"
    assert lines[1].startswith("site-l: wrote deploy/site-l/ (files: ")
    readme = (small_site_repo / "deploy/site-l/README.md").read_text()
    assert "- OpenStack 2026.1 on rocky" in readme
    # the same again is refused: the site is on 2026.1 now
    again = kkc(small_site_repo, "upgrade", "site-l", "--to", "2026.1")
    assert again.exit_code == 2
    assert again.stderr == f"{SITE_L}:7:3: KKC190 the site is already on 2026.1\n"


def test_release_from_the_fleet_defaults_goes_into_the_site(small_site_repo: Path, kkc):
    defaults = small_site_repo / "sites/defaults.yaml"  # it pins the fleet to 2025.1
    assert 'release: "2025.1"' in defaults.read_text()
    path = small_site_repo / SITE_L
    text = path.read_text()
    path.write_text(text.replace('  release: "2025.1"\n', "", 1))
    text = text.replace('release: "2025.1"', 'release: "2026.1"')
    result = kkc(small_site_repo, "upgrade", "site-l", "--to", "2026.1", "-o", "json")
    assert result.exit_code == 0, result.output
    assert path.read_text() == text  # release first in the openstack mapping
    assert 'release: "2025.1"' in defaults.read_text()  # the fleet default is not moved


def _with_overrides(root: Path) -> None:
    path = root / SITE_L
    path.write_text(
        path.read_text()
        + "config:\n"
        + "  keystone:\n"
        + "    DEFAULT: {watch_log_file: true}\n"  # line 23: removed in 2026.1
        + "    cache:\n"
        + "      dead_timeout: 60\n"  # line 25: renamed
        + "      enforce_fips_mode: false\n"  # line 26: deprecated for removal
    )
    (root / "sites/site-l/config").mkdir()
    (root / "sites/site-l/config/keystone.conf").write_text(
        "[DEFAULT]\ndebug = true\n\n[healthcheck]\npath = /healthcheck\n"
    )


def test_overrides_the_target_removed_are_refused(small_site_repo: Path, kkc):
    _with_overrides(small_site_repo)
    assert kkc(small_site_repo, "build", "site-l").exit_code == 0  # valid on 2025.1
    before = snapshot(small_site_repo)
    result = kkc(small_site_repo, "upgrade", "site-l", "--to", "2026.1")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "sites/site-l/config/keystone.conf:5:1: KKC191 [healthcheck] path: removed in 2026.1 "
        "(keystone.conf)",
        f"{SITE_L}:23:15: KKC191 [DEFAULT] watch_log_file: removed in 2026.1 (keystone.conf)",
    ]
    assert snapshot(small_site_repo) == before
    as_json = kkc(small_site_repo, "upgrade", "site-l", "--to", "2026.1", "-o", "json")
    assert as_json.exit_code == 2
    assert [
        f"{p['severity']}: {p['file']}:{p['line']}:{p['col']}: {p['code']} {p['message']}"
        for p in json.loads(as_json.stdout)["problems"]
    ] == [
        f"warning: {SITE_L}:25:7: KKC192 [cache] dead_timeout: renamed in 2026.1 "
        "(keystone.conf): use [cache] hashclient_dead_timeout",
        f"warning: {SITE_L}:26:7: KKC193 [cache] enforce_fips_mode: deprecated for removal in "
        "2026.1 (keystone.conf)",
        "error: sites/site-l/config/keystone.conf:5:1: KKC191 [healthcheck] path: removed in "
        "2026.1 (keystone.conf)",
        f"error: {SITE_L}:23:15: KKC191 [DEFAULT] watch_log_file: removed in 2026.1 "
        "(keystone.conf)",
    ]
    assert snapshot(small_site_repo) == before


def test_a_setting_the_target_does_not_support_restores_the_site(small_site_repo: Path, kkc):
    path = small_site_repo / SITE_K
    path.write_text(path.read_text().replace("distro: ubuntu", "distro: centos"))
    assert kkc(small_site_repo, "build", "site-k").exit_code == 0  # Kolla 22 builds CentOS
    before = snapshot(small_site_repo)
    result = kkc(small_site_repo, "upgrade", "site-k", "--to", "2026.2")
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f'{SITE_K}:8:11: KKC115 openstack.distro: Kolla builds no "centos" images for '
        "OpenStack 2026.2 (available: debian, rocky, ubuntu)\n"
    )
    assert snapshot(small_site_repo) == before


def test_a_hand_edited_release_gets_the_path_checks_of_upgrade(small_site_repo: Path, kkc):
    """A site whose committed output is on another release: `kkc build` and `kkc check`
    refuse what `kkc upgrade` refuses, at the key that sets the release."""
    result = kkc(small_site_repo, "build", "site-l", "--commit")
    assert result.exit_code == 0, result.output
    path = small_site_repo / SITE_L
    text = path.read_text()
    path.write_text(text.replace('release: "2025.1"', 'release: "2026.2"'))
    before = snapshot(small_site_repo / "deploy")
    refused = (
        f"{SITE_L}:7:3: KKC190 the committed output is on 2025.1: 2025.1 -> 2026.2 skips "
        "2025.2, 2026.1 (a SLURP release: a skip ends at the next SLURP release, 2026.1); "
        "upgrade to 2026.1 first (`kkc upgrade` checks each step)\n"
    )
    result = kkc(small_site_repo, "build", "site-l")
    assert (result.exit_code, result.stderr) == (
        2,
        refused + "kkc build: nothing written; once the way out above is taken (or to accept "
        "the loss), `kkc build --allow-destructive` writes it\n",
    )
    assert snapshot(small_site_repo / "deploy") == before
    result = kkc(small_site_repo, "check", "site-l")
    assert result.exit_code == 2 and refused in result.output
    # `kkc diff` in the pull request says so at the top, before the object changes
    result = kkc(small_site_repo, "diff", "site-l")
    assert result.exit_code == 2
    assert result.stdout.startswith(
        "REFUSED BY KKC BUILD: site-l: a release change `kkc upgrade` would refuse\n  " + refused
    )
    assert result.stderr == "kkc diff: site-l: a release change kkc build refuses\n"
    result = kkc(small_site_repo, "diff", "site-l", "--output", "json")
    codes = [p["code"] for p in json.loads(result.stdout)[0]["refusedReleaseChanges"]]
    assert (result.exit_code, codes) == (2, ["KKC190"])
    # the SLURP step is allowed, as `kkc upgrade site-l --to 2026.1` allows it
    path.write_text(text.replace('release: "2025.1"', 'release: "2026.1"'))
    result = kkc(small_site_repo, "build", "site-l")
    assert result.exit_code == 0, result.output
