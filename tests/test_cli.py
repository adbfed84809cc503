"""The command line surface: version, help, list, secrets, render, usage errors, and the
README's list of problem codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from conftest import PROJECT
from kkc.codes import CODES
from kkc.validate import crd_validator

README = PROJECT / "README.md"
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
    assert result.stderr.startswith(f"no sites/ directory in {tmp_path.resolve()} or above")


def test_build_without_a_site_is_a_usage_error(site_repo: Path, kkc) -> None:
    result = kkc(site_repo, "build")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == "name at least one site, or pass --all\n"
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


def test_every_code_is_documented_in_readme() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [code for code in CODES if not re.search(rf"\b{code}\b", text)]
    assert missing == []


def test_readme_documents_no_unknown_codes() -> None:
    if not README.exists():
        pytest.skip("README.md not written yet")
    text = README.read_text(encoding="utf-8")
    assert sorted(set(re.findall(r"\bKKC[0-9]{3}\b", text)) - set(CODES)) == []
