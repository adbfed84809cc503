"""The pull-request workflow: `kkc diff` (object-level changes against committed output),
`kkc check` (committed output up to date, untouched and valid), the pre-commit hook and the
example CI workflows."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import git
import pytest
import typer.main
import yaml

from conftest import PROJECT, snapshot
from helpers import (
    STRICT_EXTERNAL_SECRET_CRD,
    WIDGET_CRD,
    crd_yaml,
    object_schema,
    set_keystone_replicas,
    write,
)
from kkc import check, kustomize, report
from kkc.cli import app
from kkc.diff import (
    MASK,
    MASK_CHANGED,
    SiteDiff,
    _fence,
    compare,
    markdown_report,
    text_report,
)
from kkc.site import load_site

KEYSTONE_DIFF = """\
--- a/Deployment/openstack/keystone-api
+++ b/Deployment/openstack/keystone-api
@@ -12,7 +12,7 @@
   name: keystone-api
   namespace: openstack
 spec:
-  replicas: 3
+  replicas: 2
   revisionHistoryLimit: 5
   selector:
     matchLabels:
"""

# the same change on the keystone-only site-k (namespace openstack-k) of small_site_repo
KEYSTONE_K_DIFF = KEYSTONE_DIFF.replace("namespace: openstack\n", "namespace: openstack-k\n")
KEYSTONE_K_DIFF = KEYSTONE_K_DIFF.replace("/Deployment/openstack/", "/Deployment/openstack-k/")


def built(kkc, repo: Path, *sites: str) -> str:
    """Build and commit ``sites``; returns the new HEAD."""
    result = kkc(repo, "build", *sites, "--commit")
    assert result.exit_code == 0, result.output
    return git.Repo(repo).head.commit.hexsha


# ---- kkc diff -------------------------------------------------------------------------------


def test_diff_without_changes_exits_0(small_site_repo: Path, kkc) -> None:
    head = built(kkc, small_site_repo, "site-k")
    before = snapshot(small_site_repo)
    result = kkc(small_site_repo, "diff", "site-k")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"site-k: no changes against HEAD ({head[:12]})\n"
    assert snapshot(small_site_repo) == before  # writes nothing


def test_diff_text_shows_the_changed_object(small_site_repo: Path, kkc) -> None:
    head = built(kkc, small_site_repo, "site-k")
    set_keystone_replicas(small_site_repo, 2, "site-k")
    result = kkc(small_site_repo, "diff", "site-k")
    assert result.exit_code == 1, result.output
    assert result.stdout == (
        f"site-k: 0 added, 1 changed, 0 removed against HEAD ({head[:12]})\n"
        "  stage identity (3 of 7)\n"
        "    changed  Deployment/openstack-k/keystone-api\n" + KEYSTONE_K_DIFF
    )
    assert result.stderr == ""


def test_diff_markdown_for_a_pr_comment(small_site_repo: Path, kkc) -> None:
    head = built(kkc, small_site_repo, "site-k")
    set_keystone_replicas(small_site_repo, 2, "site-k")
    result = kkc(small_site_repo, "diff", "site-k", "-o", "markdown")
    assert result.exit_code == 1, result.output
    assert result.stdout == (
        f"### `site-k`: 0 added, 1 changed, 0 removed against `HEAD ({head[:12]})`\n\n"
        "| stage | change | kind | namespace | name |\n| --- | --- | --- | --- | --- |\n"
        "| identity | changed | Deployment | openstack-k | `keystone-api` |\n\n"
        "<details><summary>changed <code>Deployment/openstack-k/keystone-api</code></summary>"
        f"\n\n```diff\n{KEYSTONE_K_DIFF}```\n\n</details>\n\n"
    )


def test_diff_json_lists_every_object_added_when_nothing_is_committed(
    small_site_repo: Path, kkc
) -> None:
    head = git.Repo(small_site_repo).head.commit.hexsha
    result = kkc(small_site_repo, "diff", "site-k", "--output", "json")
    assert result.exit_code == 1, result.output
    [site] = json.loads(result.stdout)
    assert (site["site"], site["against"], site["commit"]) == ("site-k", "HEAD", head)
    assert not (small_site_repo / "deploy").exists()
    # exactly the objects `kkc build` records
    assert kkc(small_site_repo, "build", "site-k").exit_code == 0
    objects = json.loads((small_site_repo / "deploy/site-k/.kkc-files").read_text())["objects"]
    keys = [
        f"{o['kind']}/{o['namespace'] + '/' if o['namespace'] else ''}{o['name']}"
        for o in site["objects"]
    ]
    assert sorted(keys) == sorted(objects)
    assert site["summary"] == {"added": len(objects), "changed": 0, "removed": 0}
    assert {o["change"] for o in site["objects"]} == {"added"}
    assert all(o["diff"].startswith("--- /dev/null\n+++ b/") for o in site["objects"])


def test_diff_all_shows_a_removed_site_and_against_an_older_revision(
    small_site_repo: Path, kkc
) -> None:
    first = built(kkc, small_site_repo, "site-k")
    second = built(kkc, small_site_repo, "site-l")
    removed = json.loads((small_site_repo / "deploy/site-l/.kkc-files").read_text())["objects"]
    shutil.rmtree(small_site_repo / "sites" / "site-l")

    result = kkc(small_site_repo, "diff", "-o", "json")  # no site named: every site
    assert result.exit_code == 1, result.output
    by_site = {d["site"]: d for d in json.loads(result.stdout)}
    assert by_site["site-k"]["objects"] == []
    assert by_site["site-l"]["summary"] == {"added": 0, "changed": 0, "removed": len(removed)}
    assert all(o["diff"] == "" for o in by_site["site-l"]["objects"])

    # at the first build, site-l had no output: against it site-l is gone from both sides
    result = kkc(small_site_repo, "diff", "--all", "--against", first[:10])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"site-k: no changes against {first[:10]} ({first[:12]})\n"
    assert second != first


def test_diff_unknown_revision_is_a_usage_error(small_site_repo: Path, kkc) -> None:
    result = kkc(small_site_repo, "diff", "site-k", "--against", "no-such-branch")
    assert result.exit_code == 2
    assert result.stderr == (
        "<command line>:1:1: KKC170 --against no-such-branch: no such git revision\n"
    )


def test_diff_outside_git_is_an_environment_problem(tmp_path: Path, kkc) -> None:
    repo = tmp_path / "plain"
    for part in ("sites", "overlays"):  # site-a uses overlays
        shutil.copytree(PROJECT / part, repo / part)
    result = kkc(repo, "diff", "site-a")
    assert result.exit_code == 4
    assert "is not inside a git repository; kkc diff compares with committed output" in (
        result.stderr
    )


SECRET_BEFORE = """\
apiVersion: v1
kind: Secret
metadata: {name: db, namespace: openstack}
stringData: {password: hunter2, user: keystone}
data: {key: c2VjcmV0}
"""
SECRET_AFTER = """\
apiVersion: v1
kind: Secret
metadata: {name: db, namespace: openstack}
stringData: {password: correct-horse, user: keystone}
data: {key: c2VjcmV0, new: bmV3}
"""


def test_secret_values_are_masked_but_changes_show() -> None:
    [d] = compare(SECRET_BEFORE, SECRET_AFTER)
    assert d.change == "changed"
    lines = d.diff.splitlines()
    assert f"-  password: {MASK}" in lines
    assert f"+  password: '{MASK_CHANGED}'" in lines  # quoted: YAML needs it
    assert f"+  new: {MASK}" in lines
    assert f"   user: {MASK}" in lines and f"   key: {MASK}" in lines  # unchanged: context
    for value in ("hunter2", "correct-horse", "keystone", "c2VjcmV0", "bmV3"):
        assert value not in d.diff
    [added] = compare("", SECRET_AFTER)
    assert "correct-horse" not in added.diff and f"+  password: {MASK}" in added.diff.splitlines()


CM = """\
apiVersion: v1
kind: ConfigMap
metadata: {{name: keystone-api-kolla-{suffix}, namespace: openstack}}
data: {{keystone.conf: "[DEFAULT]\\ndebug = {debug}\\n"}}
"""


def test_generated_configmap_with_a_new_hash_suffix_is_a_change() -> None:
    before = CM.format(suffix="58d7gt9729", debug="false")
    after = CM.format(suffix="g9ffk8gk48", debug="true")
    [d] = compare(before, after)
    assert (d.change, d.key, d.previous_name) == (
        "changed",
        "ConfigMap/openstack/keystone-api-kolla",
        "keystone-api-kolla-58d7gt9729",
    )
    assert "-    debug = false\n+    debug = true\n" in d.diff
    assert "-  name: keystone-api-kolla-58d7gt9729\n+  name: keystone-api-kolla-g9ffk8gk48\n" in (
        d.diff
    )
    assert text_report_lines([d])[1:3] == [
        "  no stage",
        "    changed  ConfigMap/openstack/keystone-api-kolla "
        "(keystone-api-kolla-58d7gt9729 -> keystone-api-kolla-g9ffk8gk48)",
    ]
    # a name that is no kustomize hash (wrong alphabet) stays remove + add
    plain = compare(CM.format(suffix="aaaaaaaaaa", debug="x"), after)
    assert sorted(o.change for o in plain) == ["added", "removed"]


def text_report_lines(objects: list) -> list[str]:
    return text_report([SiteDiff("s", "HEAD", "0" * 40, objects)]).splitlines()


def test_objects_are_matched_by_group_not_version() -> None:
    before = "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: x}\n"
    after = "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: x}\n"
    [d] = compare(before, after)
    assert (d.change, d.api_version) == ("changed", "policy/v1")
    assert compare(after, after) == []


def test_markdown_fence_is_longer_than_any_backticks_in_the_diff() -> None:
    assert _fence("no ticks") == "```"
    assert _fence("a ```` b") == "`````"
    obj = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: '````'}\n"
    report = markdown_report([SiteDiff("s", "HEAD", None, compare("", obj))])
    assert "`````diff\n" in report and "against `HEAD (no commits)`" in report


def _configmaps(*names: str) -> str:
    return "".join(
        f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {n}}}\ndata: {{a: '{n * 20}'}}\n"
        for n in names
    )


def test_markdown_max_bytes_drops_whole_diff_blocks_from_the_end() -> None:
    sites = [
        SiteDiff("s1", "HEAD", None, compare("", _configmaps("a", "b"))),
        SiteDiff("s2", "HEAD", None, compare("", _configmaps("c"))),
    ]
    full = markdown_report(sites)
    blocks = full.count("<details>")
    assert blocks == 3
    size = len(full.encode())  # bytes, not characters: the tables have "—"
    assert markdown_report(sites, size) == full  # fits: unchanged, no note
    # one byte too few: the last block (s2's ConfigMap c) goes, the tables stay
    cut = markdown_report(sites, size - 1)
    assert len(cut.encode()) <= size - 1
    assert cut == (
        full[: full.index("<details><summary>added <code>ConfigMap/c")]
        + "_1 object diff omitted to keep this under the size limit; "
        "`kkc diff` prints them all._\n"
    )
    assert "| added | ConfigMap | — | `c` |" in cut
    # a limit only the tables fit: every block goes, and the count says so
    tiny = markdown_report(sites, 1)
    assert tiny == re.sub(r"(?s)<details>.*?</details>\n\n", "", full) + (
        "_3 object diffs omitted to keep this under the size limit; `kkc diff` prints them all._\n"
    )
    assert "| added | ConfigMap | — | `a` |" in tiny


def test_max_bytes_needs_markdown(small_site_repo: Path, kkc) -> None:
    result = kkc(small_site_repo, "diff", "site-k", "--max-bytes", "100")
    assert result.exit_code == 2
    assert result.stderr == "kkc diff: --max-bytes needs -o markdown\n"


# ---- kkc check ------------------------------------------------------------------------------

REBUILD = "run `kkc build site-a` and commit the result"
REBUILD_K = REBUILD.replace("site-a", "site-k")


def test_check_clean_tree_exits_0_and_writes_nothing(small_site_repo: Path, kkc) -> None:
    built(kkc, small_site_repo, "site-k", "site-l")
    before = snapshot(small_site_repo)
    result = kkc(small_site_repo, "check")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "site-k: deploy/site-k/ up to date and valid\nsite-l: deploy/site-l/ up to date and valid\n"
    )
    assert snapshot(small_site_repo) == before


def test_check_stale_output_names_each_file(small_site_repo: Path, kkc) -> None:
    built(kkc, small_site_repo, "site-k")
    set_keystone_replicas(small_site_repo, 2, "site-k")
    before = snapshot(small_site_repo)
    result = kkc(small_site_repo, "check", "site-k")
    assert result.exit_code == 1
    assert result.stdout == (
        f"deploy/site-k/.kkc-files:1:1: KKC327 stale (recompiling changes it); {REBUILD_K}\n"
        "deploy/site-k/stages/identity/kustomization.yaml:1:1: KKC327 stale (recompiling "
        f"changes it); {REBUILD_K}\n"
    )
    assert result.stderr == "kkc check: 2 problems in site-k\n"
    assert snapshot(small_site_repo) == before


def test_check_hand_edits_and_foreign_files(small_site_repo: Path, kkc) -> None:
    built(kkc, small_site_repo, "site-k")
    site = small_site_repo / "deploy" / "site-k"
    patch = site / "stages/identity/patches/keystone-api-deployment.yaml"
    patch.write_text(patch.read_text() + "# tuned by hand\n")
    write(site, "notes.txt", "hello\n")
    (site / "README.md").unlink()
    result = kkc(small_site_repo, "check", "site-k", "-o", "json")
    assert result.exit_code == 1
    [report] = json.loads(result.stdout)
    assert report["ok"] is False
    assert [(p["file"], p["code"], p["message"]) for p in report["problems"]] == [
        ("deploy/site-k/README.md", "KKC327", f"missing (recompiling creates it); {REBUILD_K}"),
        (
            "deploy/site-k/notes.txt",
            "KKC329",
            "not generated by kkc (not in .kkc-files); remove it, or use sites/site-k/patches/",
        ),
        (
            "deploy/site-k/stages/identity/patches/keystone-api-deployment.yaml",
            "KKC328",
            "edited by hand (differs from its digest in .kkc-files); change sites/site-k/ "
            "instead and run `kkc build site-k`",
        ),
    ]


def test_check_invalid_output_even_when_the_files_are_up_to_date(
    small_site_repo: Path, kkc
) -> None:
    built(kkc, small_site_repo, "site-k")
    base = small_site_repo / "base/keystone/identity/keystone-api-deployment.yaml"
    base.write_text(base.read_text().replace("\nspec:\n", "\nspec:\n  bogusField: 1\n", 1))
    result = kkc(small_site_repo, "check", "site-k")
    assert result.exit_code == 1
    assert result.stdout == (
        "deploy/site-k/kustomization.yaml:1:1: KKC301 Deployment/keystone-api: spec: "
        "Additional properties are not allowed ('bogusField' was unexpected)\n"
    )


def test_check_unbuilt_and_orphaned_sites(small_site_repo: Path, kkc) -> None:
    built(kkc, small_site_repo, "site-l")
    shutil.copytree(small_site_repo / "deploy" / "site-l", small_site_repo / "deploy" / "site-z")
    result = kkc(small_site_repo, "check", "--all")
    assert result.exit_code == 1
    assert result.stdout == (
        "deploy/site-k/:1:1: KKC330 not built: no .kkc-files; " + REBUILD_K + "\n"
        "site-l: deploy/site-l/ up to date and valid\n"
        "deploy/site-z/:1:1: KKC330 output of a site that does not exist (no "
        "sites/site-z/site.yaml); remove deploy/site-z/ (git rm -r deploy/site-z)\n"
    )
    # a named site: no orphan search
    assert kkc(small_site_repo, "check", "site-l").exit_code == 0


ES_PATCH = """\
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: keystone-secrets
spec:
  bogusField: 1
"""
LAX_EXTERNAL_SECRET_CRD = crd_yaml(
    "external-secrets.io",
    "ExternalSecret",
    {"v1": object_schema({"type": "object", "x-kubernetes-preserve-unknown-fields": True})},
)
# an overlay whose infra stage adds a custom resource of a kind kkc embeds no schema for
WIDGET_OVERLAY = {
    "overlays/widgets/infra/kustomization.yaml": (
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
        "resources:\n  - widget.yaml\n"
    ),
    "overlays/widgets/infra/widget.yaml": (
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 3\n"
    ),
}
WIDGET_NOT_VALIDATED = (
    "warning: example.com/v1 Widget objects not validated: kkc embeds no schema for them "
    "(pass --crd-dir DIR with their CRD, or set KKC_CRD_DIR)\n"
)


def test_check_needs_no_configuration(site_repo: Path, kkc) -> None:
    built(kkc, site_repo, "site-a")
    result = kkc(site_repo, "check", "site-a")
    assert result.exit_code == 0, result.output
    assert result.stdout == "site-a: deploy/site-a/ up to date and valid\n"
    assert result.stderr == ""  # every custom resource met its embedded CRD schema


def test_check_refuses_custom_resources_no_schema_covers(
    small_site_repo: Path, kkc, tmp_path: Path
) -> None:
    site_file = small_site_repo / "sites/site-k/site.yaml"
    site_file.write_text(site_file.read_text() + "overlays: [widgets]\n")
    for rel, text in WIDGET_OVERLAY.items():
        write(small_site_repo, rel, text)
    result = kkc(small_site_repo, "build", "site-k", "--commit")
    assert result.exit_code == 0, result.output
    assert result.stderr == WIDGET_NOT_VALIDATED  # the build says what it could not check
    result = kkc(small_site_repo, "check", "site-k")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "<command line>:1:1: KKC172 kkc check cannot validate custom resources that no "
        "schema covers: example.com/v1 Widget (site-k); kkc embeds no CRD for them: pass "
        "--crd-dir DIR with their CRDs (or set KKC_CRD_DIR), or pass --no-require-crds\n"
    )
    # opted out: the same site passes, with the warning
    [res] = check.check_sites(
        small_site_repo,
        [load_site(small_site_repo, "site-k")],
        crd_dir=None,
        all_sites=False,
        require_crds=False,
    )
    assert (res.problems, [report.line(w) for w in res.warnings]) == (
        [],
        [WIDGET_NOT_VALIDATED.rstrip("\n")],
    )
    result = kkc(small_site_repo, "check", "site-k", "--no-require-crds")
    assert (result.exit_code, result.stderr) == (0, WIDGET_NOT_VALIDATED)
    # a CRD directory that adds the kind: validated, and a broken Widget is found
    crds = tmp_path / "crds"
    write(crds, "widget.yaml", WIDGET_CRD)
    result = kkc(small_site_repo, "check", "site-k", "--crd-dir", str(crds))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    bigger = tmp_path / "bigger"
    write(bigger, "widget.yaml", WIDGET_CRD.replace("minimum: 1", "minimum: 5"))
    result = kkc(small_site_repo, "check", "site-k", "--crd-dir", str(bigger))
    assert result.exit_code == 1
    assert result.stdout == (
        "deploy/site-k/kustomization.yaml:1:1: KKC302 Widget/w: spec.size: 3 is less than "
        "the minimum of 5\n"
    )


def test_successful_json_runs_carry_their_warnings(small_site_repo: Path, kkc) -> None:
    """-o json of a run that succeeds: its warnings are entries with severity "warning"
    in the JSON (per site), and nothing is printed on stderr."""
    site_file = small_site_repo / "sites/site-k/site.yaml"
    site_file.write_text(site_file.read_text() + "overlays: [widgets]\n")
    for rel, text in WIDGET_OVERLAY.items():
        write(small_site_repo, rel, text)
    entry = {
        "file": None,
        "line": None,
        "col": None,
        "code": None,
        "message": WIDGET_NOT_VALIDATED.removeprefix("warning: ").rstrip("\n"),
        "severity": "warning",
    }
    result = kkc(small_site_repo, "build", "site-k", "--commit", "-o", "json")
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    [row] = json.loads(result.stdout)
    assert row["warnings"] == [entry]
    result = kkc(small_site_repo, "check", "site-k", "--no-require-crds", "-o", "json")
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    [row] = json.loads(result.stdout)
    assert (row["ok"], row["problems"], row["warnings"]) == (True, [], [entry])


def test_check_finds_an_external_secret_a_site_patch_broke(
    small_site_repo: Path, kkc, tmp_path: Path
) -> None:
    write(small_site_repo, "sites/site-k/patches/es.yaml", ES_PATCH)
    # built and committed against a cluster CRD that allows anything in spec (it wins over
    # the embedded schema); without it, the embedded schema catches the broken field
    lax = tmp_path / "lax"
    write(lax, "es.yaml", LAX_EXTERNAL_SECRET_CRD)
    result = kkc(small_site_repo, "build", "site-k", "--commit", "--crd-dir", str(lax))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    result = kkc(small_site_repo, "check", "site-k")
    assert result.exit_code == 1
    assert result.stdout == (
        "deploy/site-k/kustomization.yaml:1:1: KKC302 ExternalSecret/keystone-secrets: spec: "
        "Additional properties are not allowed ('bogusField' was unexpected)\n"
    )
    assert result.stderr == "kkc check: 1 problem in site-k\n"
    result = kkc(small_site_repo, "build", "site-k")
    assert result.exit_code == 3
    assert result.stderr.startswith(
        "deploy/site-k/kustomization.yaml:1:1: KKC302 ExternalSecret/keystone-secrets: spec: "
        "Additional properties are not allowed ('bogusField' was unexpected)\n"
    )


def test_a_crd_directory_overrides_the_embedded_schema(
    site_repo: Path, kkc, tmp_path: Path
) -> None:
    crds = tmp_path / "crds"
    write(crds, "es.yaml", STRICT_EXTERNAL_SECRET_CRD)  # no spec.data in this cluster's CRD
    before = snapshot(site_repo)
    result = kkc(site_repo, "build", "site-a", "--crd-dir", str(crds))
    assert result.exit_code == 3
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "deploy/site-a/kustomization.yaml:1:1: KKC302 ExternalSecret/cinder-ceph: spec: "
        "Additional properties are not allowed ('data' was unexpected)"
    )
    assert all("ExternalSecret/" in line for line in lines[:-1]), lines
    assert snapshot(site_repo) == before


@pytest.mark.parametrize("command", ["check", "build", "diff"])
def test_a_missing_crd_directory_is_one_usage_error(
    site_repo: Path, kkc, tmp_path: Path, command: str
) -> None:
    before = snapshot(site_repo)
    missing = tmp_path / "no-crds"
    result = kkc(site_repo, command, "site-a", "--crd-dir", str(missing))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"<command line>:1:1: KKC171 CRD directory {missing} (--crd-dir or KKC_CRD_DIR) "
        "does not exist or is not a directory\n"
    )
    missing.mkdir()
    write(missing, "notes.yaml", "just: notes\n")
    result = kkc(site_repo, command, "site-a", "--crd-dir", str(missing))
    assert result.exit_code == 2
    assert result.stderr == (
        f"<command line>:1:1: KKC171 CRD directory {missing} (--crd-dir or KKC_CRD_DIR) "
        "has no CustomResourceDefinition (in *.yaml or *.yml files)\n"
    )
    assert snapshot(site_repo) == before


def test_kustomize_failure_is_one_line_without_klog_or_temp_paths(site_repo: Path, kkc) -> None:
    shutil.rmtree(site_repo / "base" / "memcached")
    result = kkc(site_repo, "build", "site-a")
    assert result.exit_code == 3
    [line] = result.stderr.splitlines()
    prefix = "deploy/site-a/kustomization.yaml:1:1: KKC300 kustomize build failed: "
    assert line.startswith(prefix), line
    assert "base/memcached/infra" in line
    assert ".kkc-tmp-" not in line and str(site_repo) not in line
    assert not re.search(r"[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+", line), line
    assert not (site_repo / "deploy").exists()


def test_kustomize_error_detail_drops_klog_and_names_the_site_directory(tmp_path: Path) -> None:
    staged = tmp_path / "deploy" / ".kkc-tmp-site-a.x1_y"
    stderr = (
        'E1201 17:07:12.123456    2663 run.go:72] "command failed" err="accumulating resources: '
        f"'{staged}/stages/infra': evalsymlink failure on '{tmp_path}/base/nope' : lstat "
        f'{tmp_path}/base/nope: no such file or directory"\n'
    )
    assert kustomize._detail(stderr, staged, "deploy/site-a/kustomization.yaml") == (
        "accumulating resources: 'deploy/site-a/stages/infra': evalsymlink failure on "
        "'base/nope' : lstat base/nope: no such file or directory"
    )


def test_check_bad_input_is_exit_2(site_repo: Path, kkc) -> None:
    result = kkc(site_repo, "check", "no-such-site")
    assert result.exit_code == 2
    assert "KKC123" in result.stderr


# ---- pre-commit hook and example CI ---------------------------------------------------------


def _command(name: str):
    cmd = typer.main.get_command(app).commands.get(name)  # type: ignore[attr-defined]
    assert cmd is not None, f"kkc has no command {name!r}"
    return cmd


def _check_invocation(words: list[str]) -> None:
    """``kkc <command> [options...]`` only uses commands and options kkc has."""
    cmd = _command(words[1])
    known = {o for p in cmd.params for o in getattr(p, "opts", [])}
    for w in words[2:]:
        if w.startswith("-"):
            assert w.split("=")[0] in known, f"kkc {words[1]} has no option {w}"


def test_pre_commit_hook_runs_kkc_check() -> None:
    [hook] = yaml.safe_load((PROJECT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "kkc-check"
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    _check_invocation(hook["entry"].split())
    files = re.compile(hook["files"])
    for path in ("sites/site-a/site.yaml", "base/nova/kustomization.yaml", "deploy/a/x.yaml"):
        assert files.search(path)
    assert not files.search("README.md")


@pytest.mark.parametrize(
    "workflow", ["github-actions.yml", "github-actions-fleet.yml", "gitlab-ci.yml"]
)
def test_example_ci_uses_existing_commands(workflow: str) -> None:
    text = (PROJECT / "examples" / "ci" / workflow).read_text()
    yaml.safe_load(text)  # valid YAML
    # every command line that runs kkc (a script line, a `run:` value or a list item)
    commands = re.findall(r"(?m)^\s*(?:-\s+|run:\s+)?(kkc\s[^|>&;\n]*)", text)
    calls = [c.split() for c in commands]
    assert {c[1] for c in calls} >= {"check", "diff", "build"}
    for words in calls:
        _check_invocation([w for w in words if not w.startswith(("$", '"'))])


@pytest.mark.parametrize(
    "workflow", ["github-actions.yml", "github-actions-fleet.yml", "gitlab-ci.yml"]
)
def test_example_ci_posts_the_diff_first_within_the_size_limit(workflow: str) -> None:
    text = (PROJECT / "examples" / "ci" / workflow).read_text()
    doc = yaml.safe_load(text)
    env = doc.get("env") or doc.get("variables")
    assert env["KKC_CRD_DIR"]  # set, not commented out: the cluster's CRDs win over kkc's
    assert "release manifests" in text  # and the comment says where they come from
    lines = text.splitlines()
    first_diff = next(i for i, line in enumerate(lines) if "kkc diff " in line)
    first_check = next(i for i, line in enumerate(lines) if "kkc check " in line)
    assert first_diff < first_check  # a stale PR still gets its diff
    assert "head -c" not in text  # kkc cuts at whole object diffs, never inside a fence
    for line in lines:
        if "--format markdown" in line:
            assert re.search(r"--max-bytes \d+", line), line


def test_diff_format_is_a_deprecated_alias_of_output(small_site_repo: Path, kkc) -> None:
    built(kkc, small_site_repo, "site-k")
    set_keystone_replicas(small_site_repo, 2, "site-k")
    for fmt in ("markdown", "json", "text"):
        new = kkc(small_site_repo, "diff", "site-k", "-o", fmt)
        old = kkc(small_site_repo, "diff", "site-k", "--format", fmt)
        assert (new.exit_code, old.exit_code) == (1, 1), old.output
        assert old.stdout == new.stdout
        assert new.stderr == ""
        assert old.stderr == "note: kkc diff --format is deprecated; use -o/--output\n"
    short = kkc(small_site_repo, "diff", "site-k", "-f", "json")
    assert short.stdout == kkc(small_site_repo, "diff", "site-k", "-o", "json").stdout
    result = kkc(small_site_repo, "diff", "site-k", "-o", "json", "--format", "markdown")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "kkc diff: --format markdown and --output json disagree; use --output\n"
    )


def _job(stage: str, image: str, config: str, name: str = "keystone-db-sync") -> str:
    return f"""\
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  namespace: openstack
  labels: {{kkc.openstack.org/stage: {stage}}}
spec:
  template:
    spec:
      containers: [{{name: db-sync, image: "{image}"}}]
      volumes: [{{name: kolla, configMap: {{name: {config}}}}}]
"""


def test_diff_groups_changes_by_stage_in_apply_order_and_says_why_jobs_run() -> None:
    deploy = (
        "apiVersion: apps/v1\nkind: Deployment\n"
        "metadata: {name: keystone-api, namespace: openstack, "
        "labels: {kkc.openstack.org/stage: identity}}\nspec: {replicas: %d}\n"
    )
    before = "---\n".join([deploy % 3, _job("db", "k:2025.1", "keystone-db-sync-kolla-58d7gt9729")])
    after = "---\n".join(
        [
            deploy % 2,
            _job("db", "k:2026.1", "keystone-db-sync-kolla-g9ffk8gk48"),
            _job("finish", "k:2026.1", "c", name="keystone-db-finish"),
        ]
    )
    objects = compare(before, after)
    assert [(o.stage, o.change, o.key) for o in objects] == [
        ("db", "changed", "Job/openstack/keystone-db-sync"),
        ("identity", "changed", "Deployment/openstack/keystone-api"),
        ("finish", "added", "Job/openstack/keystone-db-finish"),
    ]
    lines = text_report_lines(objects)
    assert lines[1:10] == [
        "  stage db (2 of 7)",
        "    changed  Job/openstack/keystone-db-sync",
        "  stage identity (3 of 7)",
        "    changed  Deployment/openstack/keystone-api",
        "  stage finish (7 of 7)",
        "    added    Job/openstack/keystone-db-finish",
        "  Jobs that run, in this order:",
        "    Job/openstack/keystone-db-sync (db): image of db-sync: k:2025.1 -> k:2026.1; "
        "config keystone-db-sync-kolla (hash 58d7gt9729 -> g9ffk8gk48)",
        "    Job/openstack/keystone-db-finish (finish): new Job: it runs when its stage syncs",
    ]
    markdown = markdown_report([SiteDiff("s", "HEAD", "0" * 40, objects)])
    assert "| db | changed | Job | openstack | `keystone-db-sync` |\n" in markdown
    assert (
        "\n**Jobs that run**, in this order:\n\n- `Job/openstack/keystone-db-sync` (db): image "
        "of db-sync: k:2025.1 -&gt; k:2026.1; config keystone-db-sync-kolla (hash "
        "58d7gt9729 -&gt; g9ffk8gk48)\n"
    ) in markdown
    [job] = [o.as_dict() for o in objects if o.name == "keystone-db-sync"]
    assert (job["stage"], job["reruns"][0]) == ("db", "image of db-sync: k:2025.1 -> k:2026.1")
    # a Job whose pod template is unchanged: only Argo CD's Replace=true re-runs it
    relabelled = _job("db", "k:2025.1", "keystone-db-sync-kolla-58d7gt9729").replace(
        "labels: {", "labels: {x: y, "
    )
    [same] = compare(_job("db", "k:2025.1", "keystone-db-sync-kolla-58d7gt9729"), relabelled)
    assert same.reruns == [
        "metadata only: Argo CD re-creates it (Replace=true) and it runs again; Flux patches "
        "it in place"
    ]
