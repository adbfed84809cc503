"""kkc set: comment-preserving edits of site.yaml, validated (schema, semantic checks,
render) before anything is written; unknown paths and plain-text secrets refused; the
object-level diff of the change printed; --dry-run writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import snapshot
from kkc import siteedit
from kkc.errors import InputError

SITE_K = "sites/site-k/site.yaml"
SITE_L = "sites/site-l/site.yaml"


def test_set_edits_in_place_and_prints_the_diff(small_site_repo: Path, kkc):
    before = (small_site_repo / SITE_K).read_text()
    (small_site_repo / SITE_K).chmod(0o664)
    r = kkc(small_site_repo, "set", "site-k", "services.keystone.tokenExpiration=7200")
    assert r.exit_code == 0, r.output
    assert (small_site_repo / SITE_K).read_text() == before.replace(
        "tokenExpiration: 3600", "tokenExpiration: 7200"
    )
    assert (small_site_repo / SITE_K).stat().st_mode & 0o777 == 0o664  # the file's own mode
    lines = r.stdout.splitlines()
    assert lines[0] == "sites/site-k/site.yaml: set services.keystone.tokenExpiration = 7200"
    assert lines[1] == "site-k: 0 added, 10 changed, 0 removed in the rendered output"
    assert "-    expiration = 3600" in lines
    assert "+    expiration = 7200" in lines
    assert lines[-1] == "next: kkc build site-k (writes deploy/site-k/), then commit both"
    assert not (small_site_repo / "deploy").exists()  # deploy/ is kkc build's


def test_dry_run_writes_nothing(small_site_repo: Path, kkc):
    before = snapshot(small_site_repo)
    r = kkc(small_site_repo, "set", "site-k", "services.keystone.api.replicas=1", "--dry-run")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == (
        "sites/site-k/site.yaml: would set services.keystone.api.replicas = 1"
    )
    assert "  removed  PodDisruptionBudget/openstack-k/keystone-api" in r.stdout
    assert r.stdout.splitlines()[-1] == "dry run: nothing written"
    assert snapshot(small_site_repo) == before


def test_new_keys_are_added_under_their_mapping(small_site_repo: Path, kkc):
    before = (small_site_repo / SITE_L).read_text()
    r = kkc(
        small_site_repo,
        "set",
        "site-l",
        "services.keystone.api.workers=3",
        "gitops.interval=5m",
        "-o",
        "json",
    )
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["set"] == [
        {"path": "services.keystone.api.workers", "value": 3},
        {"path": "gitops.interval", "value": "5m"},
    ]
    assert report["written"] is True
    assert {o["kind"] for o in report["objects"]} >= {"Deployment"}
    assert (small_site_repo / SITE_L).read_text() == before.replace(
        "    tokenExpiration: 7200\n",
        "    tokenExpiration: 7200\n    api:\n      workers: 3\n",
    ).replace("  engine: flux\n", "  engine: flux\n  interval: 5m\n")


@pytest.mark.parametrize(
    ("word", "line"),
    [
        (
            "services.keystone.tokenexpiration=7200",
            "<command line>:1:1: KKC196 services.keystone.tokenexpiration: unknown key; did "
            'you mean "tokenExpiration"?',
        ),
        (
            "services.keystone=1",
            "<command line>:1:1: KKC196 services.keystone is a mapping: set one of its keys "
            "(api, enabled, fernetRotationHours, tokenExpiration)",
        ),
        (
            "overlays=ha",
            "<command line>:1:1: KKC196 overlays is a list: edit it in the file",
        ),
        (
            "services.keystone.api.replicas=[1, 2]",
            "<command line>:1:1: KKC196 services.keystone.api.replicas: the value must be a "
            "scalar (edit lists and mappings in the file)",
        ),
        ("replicas", "<command line>:1:1: KKC196 'replicas': expected dotted.path=value"),
        (
            'openstack.release="2026.2"',
            "<command line>:1:1: KKC199 openstack.release changes only through kkc upgrade, "
            "which checks the path: kkc upgrade site-k --to RELEASE (--plan shows the upgrade "
            "first)",
        ),
        (
            "services.keystone.api.replicas=0",
            f"{SITE_K}:16:17: KKC112 services.keystone.api.replicas: must be at least 1 (got 0)",
        ),
        (
            "services.glance.enabled=true",
            f"{SITE_K}:11:3: KKC113 endpoints.hosts: glance is enabled and needs a public host "
            "name (endpoints.hosts.glance)",
        ),
    ],
)
def test_refused_edits_write_nothing(small_site_repo: Path, kkc, word, line):
    before = snapshot(small_site_repo)
    r = kkc(small_site_repo, "set", "site-k", word)
    assert r.exit_code == 2, r.output
    assert r.stderr.splitlines()[0].startswith(line), r.stderr
    assert snapshot(small_site_repo) == before


@pytest.mark.parametrize(
    ("word", "line"),
    [
        (
            "config.keystone.database.password=hunter2-Secret",
            "<command line>:1:1: KKC197 config.keystone.database.password looks like a secret; "
            "kkc set never writes one in plain text (value not shown): put it in the secret "
            "store and reference it: kkc set site-k "
            "'config.keystone.database.password={secret: NAME}' (docs/secrets.md)",
        ),
        (
            "config.keystone.database.connection=mysql://keystone:hunter2-Secret@db/keystone",
            f"{SITE_K}:21:7: KKC134 [database] connection: secret option set in plain text; "
            "reference a secret of the store instead, in YAML: config: {keystone: {database: "
            "{connection: {secret: <name>}}}}",
        ),
    ],
)
def test_plain_text_secrets_are_refused_unechoed(small_site_repo: Path, kkc, word, line):
    before = snapshot(small_site_repo)
    r = kkc(small_site_repo, "set", "site-k", word)
    assert r.exit_code == 2
    assert r.stderr.splitlines() == [line]
    assert "hunter2" not in r.output
    assert snapshot(small_site_repo) == before


def test_secret_reference_is_accepted(small_site_repo: Path, kkc):
    r = kkc(
        small_site_repo,
        "set",
        "site-k",
        "config.keystone.database.connection={secret: keystone_database_url}",
        "--dry-run",
    )
    assert r.exit_code == 0, r.output


def test_siteedit_flow_values_and_refusals():
    text = "a:\n  b: {c: 1, d: x}   # note\n  e: 'q'\n"
    assert siteedit.set_value(text, ("a", "b", "d"), "y", "f") == text.replace("d: x", "d: y")
    assert siteedit.set_value(text, ("a", "e"), '"r"', "f") == text.replace("'q'", '"r"')
    assert siteedit.set_value(text, ("a", "g"), "2", "f") == text + "  g: 2\n"
    with pytest.raises(InputError) as exc:
        siteedit.set_value(text, ("a", "b", "z"), "2", "f")
    assert str(exc.value) == (
        "f:2:3: KKC198 a.b: write it as a block mapping for kkc to add z to it"
    )
    with pytest.raises(InputError) as exc:
        siteedit.set_value(text, ("a", "e", "z"), "2", "f")
    assert str(exc.value) == "f:3:3: KKC198 a.e is not a mapping"


@pytest.mark.parametrize(
    ("text", "path", "edited"),
    [
        ("a:\n  s: null  # c\n  b: 1\n", ("a", "s"), "a:\n  s: X  # c\n  b: 1\n"),
        ("a:\n  s:\n  b: 1\n", ("a", "s"), "a:\n  s: X\n  b: 1\n"),
        ("a:\n  s:   # c\n", ("a", "s"), "a:\n  s: X   # c\n"),
        ("a:\n  s: null  # c\n", ("a", "s", "k"), "a:\n  s:  # c\n    k: X\n"),
        ("a:\n  s: ~\n  b: 1\n", ("a", "s", "k"), "a:\n  s:\n    k: X\n  b: 1\n"),
        ("a:\n  b: 1\n", ("a", "s"), "a:\n  s: X\n  b: 1\n"),  # first=True
        ("a:\n  b: 1\n", ("c", "d"), "a:\n  b: 1\nc:\n  d: X\n"),
    ],
)
def test_siteedit_null_values_and_new_keys(text, path, edited):
    first = path == ("a", "s") and "s" not in text
    assert siteedit.set_value(text, path, "X", "f", first=first) == edited


def test_set_under_a_null_mapping(small_site_repo: Path, kkc):
    """site-l has `store: null` (backend existing): a store can be set under it."""
    before = (small_site_repo / SITE_L).read_text()
    r = kkc(
        small_site_repo,
        "set",
        "site-l",
        "secrets.store.kind=ClusterSecretStore",
        "secrets.store.name=vault",
        "--dry-run",
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[:2] == [
        "sites/site-l/site.yaml: would set secrets.store.kind = ClusterSecretStore",
        "sites/site-l/site.yaml: would set secrets.store.name = vault",
    ]
    assert (small_site_repo / SITE_L).read_text() == before


def test_an_edit_the_next_build_refuses_is_told_at_once(small_site_repo: Path, kkc):
    """kkc set writes a valid edit, but says when `kkc build` will refuse it against the
    committed output without --allow-destructive (here KKC158, the secret back end)."""
    assert kkc(small_site_repo, "build", "site-k", "--commit").exit_code == 0
    r = kkc(small_site_repo, "set", "site-k", "secrets.backend=existing")
    assert r.exit_code == 0, r.output
    [warning] = [line for line in r.stderr.splitlines() if "KKC158" in line]
    assert warning.startswith("warning: sites/site-k/site.yaml:")
    assert "  removed  ExternalSecret/openstack-k/keystone-secrets" in r.stdout
    build = kkc(small_site_repo, "build", "site-k")
    assert build.exit_code == 2 and "KKC158" in build.stderr
