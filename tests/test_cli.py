"""The command line surface: version, help, list, secrets, render, usage errors. (That the
documentation lists every problem code is tests/test_docs.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from kkc.validate import crd_validator

COMMANDS = ("build", "render", "show", "secrets", "list", "doctor")


def test_version(kkc, tmp_path: Path) -> None:
    result = kkc(tmp_path, "--version")
    assert result.exit_code == 0
    assert result.stdout == "kkc 0.1.0\n"


def test_help_lists_every_command(kkc, tmp_path: Path) -> None:
    result = kkc(tmp_path, "--help")
    assert result.exit_code == 0, result.output
    listed = re.findall(r"^\W*([a-z]+)\s{2,}\S", result.stdout, re.M)
    for command in COMMANDS:
        assert command in listed, f"{command} missing from --help:\n{result.stdout}"


def test_list(site_repo: Path, kkc) -> None:
    sites = sorted(p.parent.name for p in (site_repo / "sites").glob("*/site.yaml"))
    assert "site-a" in sites
    result = kkc(site_repo, "list")
    assert result.exit_code == 0, result.output
    assert result.stdout == "".join(f"{s}\tnot built\n" for s in sites)
    assert kkc(site_repo, "build", "site-a").exit_code == 0
    assert kkc(site_repo, "list").stdout == "".join(
        f"{s}\t{'built' if s == 'site-a' else 'not built'}\n" for s in sites
    )
    as_json = kkc(site_repo, "list", "-o", "json")
    assert json.loads(as_json.stdout) == [{"site": s, "built": s == "site-a"} for s in sites]


def test_list_outside_a_site_repository(tmp_path: Path, kkc) -> None:
    result = kkc(tmp_path, "list")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"kkc list: no sites/ directory in {tmp_path.resolve()} or above"
    )


def test_build_without_a_site_is_a_usage_error(site_repo: Path, kkc) -> None:
    result = kkc(site_repo, "build")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == "kkc build: name at least one site, or pass --all\n"
    assert not (site_repo / "deploy").exists()


SECRETISH_ASSIGNMENT = re.compile(
    r"(?i)\b\w*(pass|password|passwd|secret|cookie|token)\w*\s*=\s*(.*)$"
)
URL_PASSWORD = re.compile(r"://[^:/@\s]+:([^@]*)@")
PLACEHOLDER = re.compile(r"^<[^<>]+>$")


def assert_no_values(text: str) -> None:
    """Secret-looking assignments and URL passwords only ever show <placeholders>."""
    for line in text.splitlines():
        m = SECRETISH_ASSIGNMENT.search(line)
        if m:
            assert PLACEHOLDER.match(m.group(2).strip()), line
        for pw in URL_PASSWORD.findall(line):
            assert PLACEHOLDER.match(pw), line
        assert "{{" not in line, line  # templates are shown with placeholders, not raw
        assert not re.search(r"[A-Za-z0-9+/]{32,}={0,2}", line), line  # nothing base64-ish


def test_secrets_text(site_repo: Path, kkc) -> None:
    result = kkc(site_repo, "secrets", "site-a")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = lines.index(
        "openstack/keystone-secrets: Keystone database password, admin password and the "
        "keystone.conf drop-in"
    )
    block = []
    for ln in lines[start + 1 :]:
        if not ln.startswith("  "):
            break
        block.append(ln)
    assert (
        block[0] == "  source: ExternalSecret keystone-secrets (store ClusterSecretStore/openbao)"
    )
    keys = [m.group(1) for ln in block if (m := re.match(r"  - ([^:]+): ", ln))]
    # osprofiler_secret: site-a's secret reference for [profiler] hmac_keys
    assert keys == ["database-password", "admin-password", "osprofiler_secret", "keystone.conf"]
    assert (
        "  - admin-password: password of the OpenStack admin user "
        "<- openstack/site-a/keystone_admin_password"
    ) in block
    assert_no_values(result.stdout)


def test_secrets_value_check_is_not_vacuous() -> None:
    for leak in (
        "default_pass = s3cr3t",
        "connection = mysql://keystone:s3cr3t@db/keystone",
        "token={{ .token }}",
    ):
        with pytest.raises(AssertionError):
            assert_no_values(leak)
    assert_no_values("default_pass = <password>\nconnection = mysql://k:<pw, URL-encoded>@db/k")


def test_secrets_json(site_repo: Path, kkc) -> None:
    result = kkc(site_repo, "secrets", "site-a", "-o", "json")
    assert result.exit_code == 0, result.output
    reqs = json.loads(result.stdout)
    by_name = {r["name"]: r for r in reqs}
    keystone = by_name["keystone-secrets"]
    assert keystone["namespace"] == "openstack"
    assert [k["key"] for k in keystone["keys"]] == [
        "database-password",
        "admin-password",
        "osprofiler_secret",
        "keystone.conf",
    ]
    admin = keystone["keys"][1]
    assert admin["remoteRef"]["key"] == "openstack/site-a/keystone_admin_password"
    ref = keystone["keys"][2]  # site-a's secret reference for [profiler] hmac_keys
    assert (ref["kollaPassword"], ref["remoteRef"]) == (
        "osprofiler_secret",
        {"key": "openstack/site-a/osprofiler_secret"},
    )
    assert "hmac_keys = <osprofiler_secret>" in keystone["keys"][3]["content"]
    for r in reqs:
        assert {"name", "namespace", "purpose", "source", "keys"} <= set(r)
        for k in r["keys"]:
            assert not {"value", "data", "stringData"} & set(k), k
            if "content" in k:
                assert_no_values(k["content"])


def test_render_output_validates(site_repo: Path, kkc) -> None:
    result = kkc(site_repo, "render", "site-a")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert not (site_repo / "deploy").exists(), "render must write nothing"
    objects = [o for o in yaml.safe_load_all(result.stdout) if o is not None]
    assert objects
    kinds = set()
    for obj in objects:
        kinds.add(obj["kind"])
        group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
        if "." in group and not group.endswith("k8s.io"):
            validator = crd_validator(obj["apiVersion"], obj["kind"])  # embedded
            errors = [e.message for e in validator.iter_errors(obj)]
            assert errors == [], (obj["kind"], obj["metadata"]["name"], errors)
        else:
            kubernetes_validate.validate(obj, "1.31", strict=True)
    assert {"Deployment", "StatefulSet", "ExternalSecret", "PodDisruptionBudget"} <= kinds
    assert sorted(o["metadata"]["name"] for o in objects if o["kind"] == "ExternalSecret") == [
        "cinder-ceph",
        "cinder-secrets",
        "glance-ceph",
        "glance-secrets",
        "heat-secrets",
        "horizon-secrets",
        "keystone-secrets",
        "mariadb-secrets",
        "neutron-secrets",
        "nova-ceph",
        "nova-secrets",
        "placement-secrets",
        "rabbitmq-secrets",
    ]
    assert all(
        o["metadata"].get("namespace") == "openstack" for o in objects if o["kind"] != "Namespace"
    )


# ---- one vocabulary: usage errors, -o json errors ------------------------------------------


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (("build",), "kkc build: name at least one site, or pass --all"),
        (("build", "--foo"), "kkc build: No such option: --foo (Possible options: --root)"),
        (("show",), "kkc show: Missing argument 'site'."),
        (
            ("list", "-o", "yaml"),
            "kkc list: Invalid value for '--output' / '-o': 'yaml' is not one of 'text', 'json'.",
        ),
        (
            ("diff", "-o", "html"),
            "kkc diff: Invalid value for '--output' / '-o': 'html' is not one of 'text', "
            "'markdown', 'json'.",
        ),
        (("bild",), "kkc: No such command 'bild'. Did you mean 'build'?"),
        (("--foo",), "kkc: No such option: --foo"),
    ],
)
def test_usage_errors_have_one_style(
    site_repo: Path, kkc, args: tuple[str, ...], stderr: str
) -> None:
    """kkc's own usage errors and Click's: one line `kkc COMMAND: message`, exit 2."""
    result = kkc(site_repo, *args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", stderr + "\n")


def problems(result) -> list[dict]:
    assert result.stderr == ""
    report = json.loads(result.stdout)
    assert list(report) == ["problems"]
    return report["problems"]


def usage(message: str) -> dict:
    return {
        "file": "<command line>",
        "line": 1,
        "col": 1,
        "code": None,
        "message": message,
        "severity": "error",
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("build", "-o", "json"), usage("name at least one site, or pass --all")),
        (
            ("list", "--output=json", "--foo"),
            usage("No such option: --foo (Possible options: --root)"),
        ),
        (("show", "-ojson"), usage("Missing argument 'site'.")),
        (
            ("show", "site-a", "--explain", "nope", "-o", "json"),
            usage("nope: no such key in the effective definition of site-a"),
        ),
        (
            ("diff", "site-a", "--max-bytes", "9", "-o", "json"),
            usage("--max-bytes needs -o markdown"),
        ),
        (
            ("lint", "nosite", "-o", "json"),
            {
                "file": "sites/nosite/site.yaml",
                "line": 1,
                "col": 1,
                "code": "KKC123",
                "message": 'site "nosite" not found (known sites: site-a, site-a-ha, site-b)',
                "severity": "error",
            },
        ),
    ],
)
def test_errors_with_output_json_are_a_problems_report_on_stdout(
    site_repo: Path, kkc, args: tuple[str, ...], expected: dict
) -> None:
    """With -o json, usage and input errors are {"problems": [...]} on stdout, nothing on
    stderr, with the exit code of the text mode (2)."""
    result = kkc(site_repo, *args)
    assert result.exit_code == 2, result.output
    assert problems(result) == [expected]


def test_input_errors_with_output_json_keep_their_location(site_repo: Path, kkc) -> None:
    path = site_repo / "sites" / "site-a" / "site.yaml"
    path.write_text(path.read_text() + "bogus: 1\n")
    text = kkc(site_repo, "build", "site-a")
    assert text.exit_code == 2
    [line] = text.stderr.splitlines()
    result = kkc(site_repo, "build", "site-a", "-o", "json")
    assert result.exit_code == 2
    [problem] = problems(result)
    assert line == (
        f"{problem['file']}:{problem['line']}:{problem['col']}: {problem['code']} "
        f"{problem['message']}"
    )
    assert problem["severity"] == "error" and problem["code"].startswith("KKC")
    assert not (site_repo / "deploy").exists()


def test_lint_json_lists_warnings_as_problems(small_site_repo: Path, kkc) -> None:
    # site-k: keystone only and no overlays, so lint builds it once (site-a's six overlays
    # cost a build each for KKC129, and a minute of the suite)
    (small_site_repo / "sites/site-k/config").mkdir()
    (small_site_repo / "sites/site-k/config/keystone.conf").write_text(
        "[DEFAULT]\nlogdir = /var/log/kolla/keystone\n"
    )
    result = kkc(small_site_repo, "lint", "site-k", "-o", "json", "--strict")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["sites"] == [{"site": "site-k", "objects": 32, "warnings": 1}]
    assert report["problems"] == [
        {
            "file": "sites/site-k/config/keystone.conf",
            "line": 2,
            "col": 1,
            "code": "KKC133",
            "message": "[DEFAULT] logdir: deprecated; use [DEFAULT] log_dir instead",
            "severity": "warning",
        }
    ]
    assert {p["severity"] for p in report["problems"]} == {"warning"}
    n = len(report["problems"])
    assert result.stderr == f"kkc lint --strict: {n} warnings\n"


def test_a_warning_is_a_problem_with_severity_warning() -> None:
    """One findings type: a warning's line and -o json entry come from the same Problem."""
    from kkc import report
    from kkc.errors import WARNING, Problem, warning

    found = Problem(
        "sites/site-a/site.yaml", 7, 5, "KKC129", 'overlay "x" changes nothing', WARNING
    )
    assert report.line(found) == (
        'warning: sites/site-a/site.yaml:7:5: KKC129 overlay "x" changes nothing'
    )
    assert found.as_dict() == {
        "file": "sites/site-a/site.yaml",
        "line": 7,
        "col": 5,
        "code": "KKC129",
        "message": 'overlay "x" changes nothing',
        "severity": "warning",
    }
    assert report.line(found.as_warning()) == report.line(found)
    error = Problem("sites/site-a/site.yaml", 7, 5, "KKC110", "unknown key")
    assert report.line(error) == "sites/site-a/site.yaml:7:5: KKC110 unknown key"
    assert report.line(warning("old option", "KKC133")) == "warning: KKC133 old option"
    assert warning("no schema").as_dict() == {
        "file": None,
        "line": None,
        "col": None,
        "code": None,
        "message": "no schema",
        "severity": "warning",
    }


def test_the_report_decides_the_exit_code() -> None:
    from kkc import report
    from kkc.errors import DifferenceFound, Problem, warning

    error = Problem("deploy/x/a.yaml", 1, 1, "KKC327", "stale")
    assert report.Report([warning("w")]).exit_code == 0
    assert report.Report([warning("w")], strict=True).exit_code == 1
    assert report.Report([error, error]).exit_code == 1
    assert report.Report([warning("w"), warning("w")]).lines() == ["warning: w"]
    report.Report([warning("w")]).verdict("not raised")
    with pytest.raises(DifferenceFound, match="^kkc lint --strict: 1 warnings$"):
        report.Report([warning("w")], strict=True).verdict("kkc lint --strict: 1 warnings")
