"""Invalid input: exactly the expected `path:line:col: CODE message` lines on stderr, exit 2,
and nothing changed in the repository (work tree and .git alike).

Each bad site is written as sites/<name>/site.yaml (lines 1-6 are helpers.MINIMAL, extra
lines start at line 7) and committed before the snapshot, then built with --commit."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import snapshot
from helpers import add_site, commit, minimal, write
from kkc.releases import RELEASES
from kkc.schema import RELEASE_MISSING

SECRET = "hunter2"
PADDING = "# padding padding padding padding padding padding padding\n"  # 58 bytes


def run_build(kkc, repo: Path, site: str, *extra: str):
    """`kkc build SITE --commit`; assert that no file under repo (including .git) changed."""
    before = snapshot(repo)
    result = kkc(repo, "build", site, "--commit", *extra)
    assert snapshot(repo) == before, "a failed build changed the repository"
    assert not (repo / "deploy").exists(), "a failed build created deploy/"
    return result


def assert_problems(result, *lines: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.stdout == ""
    assert result.stderr.splitlines() == list(lines)


def bomb(levels: int = 9, width: int = 9) -> str:
    """A billion-laughs document: `width`**`levels` scalars once aliases are expanded."""
    rows = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels + 1):
        rows.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(rows) + "\n"


# name, site.yaml contents, expected stderr lines (with {p} for the site file's path)
CASES = [
    pytest.param(
        "syntax",
        minimal("syntax", "region: FRA1\n  bad: indent\n"),
        ["{p}:8:6: KKC101 YAML syntax error: mapping values are not allowed here"],
        id="KKC101-syntax",
    ),
    pytest.param(
        "unclosed",
        minimal("unclosed", "services:\n  keystone: [1, 2\n"),
        ["{p}:9:1: KKC101 YAML syntax error: expected ',' or ']', but got '<stream end>'"],
        id="KKC101-unclosed-flow",
    ),
    pytest.param(
        "dup",
        minimal("dup", "services:\n  keystone:\n    enabled: true\n    enabled: false\n"),
        ['{p}:10:5: KKC102 duplicate key "enabled" (first defined at line 9)'],
        id="KKC102-nested",
    ),
    pytest.param(
        "dup-top",
        minimal("dup-top", "region: FRA1\nregion: FRA2\n"),
        ['{p}:8:1: KKC102 duplicate key "region" (first defined at line 7)'],
        id="KKC102-top-level",
    ),
    pytest.param(
        "many-aliases",
        minimal("many-aliases", "description: &d x\nregion: [" + ", ".join(["*d"] * 101) + "]\n"),
        ["{p}:8:410: KKC103 too many YAML aliases (limit 100 aliases, 100000 nodes once expanded)"],
        id="KKC103-alias-count",
    ),
    pytest.param(
        "latin1",
        minimal("latin1").encode() + b"description: caf\xe9 in Frankfurt\n",
        ["{p}:7:17: KKC104 file is not valid UTF-8 (byte 0xe9)"],
        id="KKC104-not-utf8",
    ),
    pytest.param("empty", b"", ["{p}:1:1: KKC105 file is empty"], id="KKC105-empty"),
    pytest.param(
        "comments",
        "# nothing here yet\n\n   # still nothing\n",
        ["{p}:1:1: KKC105 file is empty"],
        id="KKC105-comments-only",
    ),
    pytest.param(
        "big",
        minimal("big") + PADDING * 20000,
        [
            f"{{p}}:1:1: KKC106 file is {len(minimal('big')) + len(PADDING) * 20000} bytes; "
            "the limit is 1048576"
        ],
        id="KKC106-too-large",
    ),
    pytest.param(
        "list",
        "- schemaVersion: 1\n- name: list\n",
        ["{p}:1:1: KKC107 top level must be a mapping"],
        id="KKC107-list",
    ),
    pytest.param(
        "two-docs",
        minimal("two-docs") + "---\n" + minimal("two-docs"),
        ["{p}:1:1: KKC107 expected one YAML document, found 2"],
        id="KKC107-two-documents",
    ),
    pytest.param(
        "unknown",
        minimal("unknown", "services:\n  keystone:\n    api:\n      replica: 2\n"),
        ['{p}:10:7: KKC110 services.keystone.api.replica: unknown key; did you mean "replicas"?'],
        id="KKC110-did-you-mean",
    ),
    pytest.param(
        "wrongtype",
        minimal("wrongtype", "services:\n  keystone:\n    api:\n      replicas: three\n"),
        ["{p}:10:17: KKC111 services.keystone.api.replicas: must be of integer type"],
        id="KKC111-string-for-int",
    ),
    pytest.param(
        "boolint",
        minimal("boolint", "services:\n  keystone:\n    api:\n      replicas: true\n"),
        ["{p}:10:17: KKC111 services.keystone.api.replicas: must be of integer type"],
        id="KKC111-bool-for-int",
    ),
    pytest.param(
        "k8s-float",
        minimal("k8s-float", "kubernetes:\n  version: 1.30\n"),
        [
            "{p}:8:12: KKC111 kubernetes.version: must be of string type "
            "(YAML read 1.3 as a number: write it in quotes)"
        ],
        id="KKC111-unquoted-version",
    ),
    pytest.param(
        "range",
        minimal("range", "services:\n  keystone:\n    api:\n      replicas: 99\n"),
        ["{p}:10:17: KKC112 services.keystone.api.replicas: must be at most 15 (got 99)"],
        id="KKC112-range",
    ),
    pytest.param(
        "distro",
        minimal("distro", "openstack:\n  distro: arch\n"),
        [
            '{p}:8:11: KKC112 openstack.distro: "arch" is not allowed '
            "(allowed: centos, debian, rocky, ubuntu)"
        ],
        id="KKC112-enum",
    ),
    pytest.param(
        "release",
        minimal("release", 'openstack:\n  release: "2019.1"\n'),
        [
            '{p}:8:12: KKC115 openstack.release: OpenStack release "2019.1" is not supported '
            f"(supported: {', '.join(sorted(RELEASES))})"
        ],
        id="KKC115-release",
    ),
    pytest.param(
        "centos",
        minimal("centos", 'openstack:\n  release: "2026.2"\n  distro: centos\n'),
        [
            '{p}:9:11: KKC115 openstack.distro: Kolla builds no "centos" images for OpenStack '
            "2026.2 (available: debian, rocky, ubuntu)"
        ],
        id="KKC115-distro",
    ),
    pytest.param(
        "overlay",
        minimal("overlay", "overlays:\n  - ingres\n"),
        ['{p}:8:5: KKC124 overlay "ingres" not found in overlays/; did you mean "ingress"?'],
        id="KKC124-overlay-missing",
    ),
    pytest.param(
        "twice",
        minimal("twice", "overlays:\n  - ha\n  - ingress\n  - ha\n"),
        [
            '{p}:10:5: KKC112 overlays[2]: overlay "ha" is already listed (at 8:5); an overlay applies once'
        ],
        id="KKC112-overlay-twice",
    ),
    pytest.param(
        "mismatch",
        minimal("other"),
        ['{p}:2:7: KKC125 name: is "other" but the site directory is sites/mismatch/'],
        id="KKC125-name-mismatch",
    ),
    pytest.param(
        "needs",
        minimal("needs", "services:\n  memcached:\n    enabled: false\n"),
        [
            "{p}:9:14: KKC120 services.memcached.enabled: keystone is enabled and needs "
            "memcached; enable memcached or disable keystone"
        ],
        id="KKC120-dependency",
    ),
    pytest.param(
        "flux-url",
        minimal(
            "flux-url",
            "gitops:\n  engine: flux\n  repoURL: git@git.example.com:cloud/sites.git\n",
        ),
        [
            "{p}:9:12: KKC160 gitops.repoURL: Flux's GitRepository takes http://, https:// or "
            'ssh:// URLs only (write git@host:path as "ssh://git@host/path")',
            "{p}:9:12: KKC160 gitops.repoURL: Flux reaches an SSH repository only with a key: "
            "name the Secret that holds it (identity and known_hosts, in gitops.namespace) in "
            "gitops.secretRef",
        ],
        id="KKC160-flux-url",
    ),
    pytest.param(
        "flux-ssh",
        minimal(
            "flux-ssh",
            "gitops:\n  engine: flux\n  repoURL: ssh://git@git.example.com/cloud/sites.git\n",
        ),
        [
            "{p}:9:12: KKC160 gitops.repoURL: Flux reaches an SSH repository only with a key: "
            "name the Secret that holds it (identity and known_hosts, in gitops.namespace) in "
            "gitops.secretRef"
        ],
        id="KKC160-flux-ssh-without-secret",
    ),
    pytest.param(
        "f" * 55,
        minimal("f" * 55, "gitops:\n  engine: flux\n"),
        [
            "{p}:2:7: KKC160 name: Flux Kustomizations are named <site>-<stage> (e.g. "
            + "f" * 55
            + "-identity), and those names must fit a 63-character label value; use a site "
            "name of at most 54 characters"
        ],
        id="KKC160-flux-name-length",
    ),
    pytest.param(
        "interval",
        minimal("interval", "gitops:\n  interval: 5 minutes\n"),
        ['{p}:8:13: KKC112 gitops.interval: "5 minutes" does not match the expected format'],
        id="KKC112-gitops-interval",
    ),
    pytest.param(
        "gpath",
        minimal("gpath", "gitops:\n  path: deploy/../x\n"),
        ['{p}:8:9: KKC112 gitops.path: "deploy/../x" does not match the expected format'],
        id="KKC112-gitops-path",
    ),
]


@pytest.mark.parametrize(("name", "data", "expected"), CASES)
def test_input_error(name: str, data, expected: list[str], site_repo: Path, kkc) -> None:
    add_site(site_repo, name, data)
    result = run_build(kkc, site_repo, name)
    assert_problems(result, *(line.format(p=f"sites/{name}/site.yaml") for line in expected))


def test_alias_bomb_refused_fast(site_repo: Path, kkc) -> None:
    add_site(site_repo, "bomb", minimal("bomb", bomb()))
    start = time.monotonic()
    result = run_build(kkc, site_repo, "bomb")
    elapsed = time.monotonic() - start
    # l0 is on line 7; the expansion passes 100000 nodes inside l5 (each *l4 is about
    # 9**5 nodes): at its second alias (column 15).
    assert_problems(
        result,
        "sites/bomb/site.yaml:12:15: KKC103 document expands to more than 100000 nodes "
        "(alias bomb?)",
    )
    assert elapsed < 5, f"alias bomb took {elapsed:.1f}s to refuse"


def test_unsupported_kubernetes_version(site_repo: Path, kkc) -> None:
    add_site(site_repo, "old-k8s", minimal("old-k8s", 'kubernetes:\n  version: "1.20"\n'))
    result = run_build(kkc, site_repo, "old-k8s")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    prefix = (
        'sites/old-k8s/site.yaml:8:12: KKC115 kubernetes.version: Kubernetes "1.20" is not '
        "supported (supported: "
    )
    assert line.startswith(prefix) and line.endswith(")"), line
    supported = line[len(prefix) : -1].split(", ")
    assert {"1.29", "1.30", "1.31"} <= set(supported)
    assert "1.20" not in supported and "1.28" not in supported


@pytest.mark.parametrize(
    "bad", ["Bad_Name", "../x", "site-a/../site-a", "a" * 64, "a-", "Site-A", "site.a"]
)
def test_bad_site_name(bad: str, site_repo: Path, kkc) -> None:
    result = run_build(kkc, site_repo, bad)
    assert_problems(
        result,
        f'<command line>:1:1: KKC122 site name "{bad}" is not a DNS-1123 label (lowercase '
        'letters, digits and "-", at most 63 characters); a site is a directory directly '
        "under sites/",
    )


def test_missing_site_lists_known_sites(site_repo: Path, kkc) -> None:
    add_site(site_repo, "zz-extra", minimal("zz-extra"))
    write(site_repo, "sites/Not_A_Site/site.yaml", minimal("x"))  # not a DNS label: not listed
    write(site_repo, "sites/no-file/README", "no site.yaml here\n")
    commit(site_repo, ["sites/Not_A_Site/site.yaml", "sites/no-file/README"])
    known = sorted(
        p.parent.name for p in (site_repo / "sites").glob("*/site.yaml") if p.parent.name.islower()
    )
    assert {"site-a", "zz-extra"} <= set(known) and "Not_A_Site" not in known
    result = run_build(kkc, site_repo, "nope")
    assert_problems(
        result,
        f'sites/nope/site.yaml:1:1: KKC123 site "nope" not found (known sites: {", ".join(known)})',
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param(
            f"services:\n  keystone:\n    adminPassword: {SECRET}\n",
            "sites/leak/site.yaml:9:20: KKC121 services.keystone.adminPassword: looks like a "
            "plain-text secret; secret values never go in site files: reference one under "
            "secrets.refs (value not shown)",
            id="secretish-key",
        ),
        pytest.param(
            f"secrets:\n  refs:\n    keystone_admin_password: {SECRET}\n",
            "sites/leak/site.yaml:9:30: KKC121 secrets.refs.keystone_admin_password: a secret "
            "reference must be a mapping {key: <remote key>, property: <field>}; secret values "
            "never go in site files (value not shown)",
            id="literal-ref",
        ),
        pytest.param(
            f'gitops:\n  token: "{SECRET}"\n',
            "sites/leak/site.yaml:8:10: KKC121 gitops.token: looks like a plain-text secret; "
            "secret values never go in site files: reference one under secrets.refs "
            "(value not shown)",
            id="unknown-secretish-key",
        ),
    ],
)
def test_plaintext_secret(extra: str, expected: str, site_repo: Path, kkc) -> None:
    add_site(site_repo, "leak", minimal("leak", extra))
    result = run_build(kkc, site_repo, "leak")
    assert_problems(result, expected)
    assert SECRET not in result.stdout and SECRET not in result.stderr
    # kkc show prints the rest of the definition, never the secret's value
    shown = kkc(site_repo, "show", "leak")
    assert (shown.exit_code, shown.stderr.splitlines()) == (2, [expected])
    assert "id.example.com" in shown.stdout and SECRET not in shown.output
    # with -o json: one document on stdout, what resolves and the problems
    shown = kkc(site_repo, "show", "leak", "-o", "json")
    assert (shown.exit_code, shown.stderr) == (2, "")
    report = json.loads(shown.stdout)
    assert [
        f"{p['file']}:{p['line']}:{p['col']}: {p['code']} {p['message']}"
        for p in report["problems"]
    ] == [expected]
    assert "id.example.com" in json.dumps(report["resolved"]) and SECRET not in shown.output


def test_duplicate_secret_key_does_not_echo_values(site_repo: Path, kkc) -> None:
    extra = f"services:\n  keystone:\n    adminPassword: {SECRET}\n    adminPassword: x{SECRET}\n"
    add_site(site_repo, "dupsecret", minimal("dupsecret", extra))
    result = run_build(kkc, site_repo, "dupsecret")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith('sites/dupsecret/site.yaml:10:5: KKC102 duplicate key "adminPassword"')
    assert SECRET not in result.stdout and SECRET not in result.stderr


def test_syntax_error_does_not_echo_secret(site_repo: Path, kkc) -> None:
    extra = f'services:\n  keystone:\n    adminPassword: "{SECRET}\n'
    add_site(site_repo, "synsecret", minimal("synsecret", extra))
    result = run_build(kkc, site_repo, "synsecret")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("sites/synsecret/site.yaml:") and " KKC101 " in line
    assert SECRET not in result.stdout and SECRET not in result.stderr


def test_multiple_problems_all_reported_sorted(site_repo: Path, kkc) -> None:
    extra = (
        "region: a b\n"  # 7
        "services:\n"  # 8
        "  memcached:\n"  # 9
        "    server:\n"  # 10
        "      memoryMB: 1\n"  # 11
        "  keystone:\n"  # 12
        "    api:\n"  # 13
        "      replicas: 0\n"  # 14
        "      worker: 3\n"  # 15
        "openstack:\n"  # 16
        "  distro: arch\n"  # 17
    )
    add_site(site_repo, "multi", minimal("multi", extra))
    result = run_build(kkc, site_repo, "multi")
    p = "sites/multi/site.yaml"
    assert_problems(
        result,
        f'{p}:7:9: KKC112 region: "a b" does not match the expected format',
        f"{p}:11:17: KKC112 services.memcached.server.memoryMB: must be at least 64 (got 1)",
        f"{p}:14:17: KKC112 services.keystone.api.replicas: must be at least 1 (got 0)",
        f'{p}:15:7: KKC110 services.keystone.api.worker: unknown key; did you mean "workers"?',
        f'{p}:17:11: KKC112 openstack.distro: "arch" is not allowed '
        "(allowed: centos, debian, rocky, ubuntu)",
    )


def test_missing_overlay_sorted_with_other_problems(site_repo: Path, kkc) -> None:
    extra = "regoin: FRA1\noverlays:\n  - no-such\n"
    add_site(site_repo, "ovmulti", minimal("ovmulti", extra))
    result = run_build(kkc, site_repo, "ovmulti")
    p = "sites/ovmulti/site.yaml"
    known = sorted(d.name for d in (site_repo / "overlays").iterdir() if d.is_dir())
    assert {"ha", "ingress"} <= set(known)
    assert_problems(
        result,
        f'{p}:7:1: KKC110 regoin: unknown key; did you mean "region"?',
        f'{p}:9:5: KKC124 overlay "no-such" not found in overlays/ (overlays: {", ".join(known)})',
    )


def test_first_contact_every_independent_problem_in_one_run(site_repo: Path, kkc) -> None:
    """An unknown overlay, a plain-text password, a misspelt key in a flow mapping, a
    misspelt service and a string for a number: one run reports all five, in file order,
    without the secret's value, and writes nothing."""
    extra = (
        "overlays:\n"  # 7
        "  - monitorng\n"  # 8
        "services:\n"  # 9
        "  keystone:\n"  # 10
        f"    adminPassword: {SECRET}\n"  # 11
        "    api: {replica: 3}\n"  # 12
        "  glanse:\n"  # 13
        "    enabled: true\n"  # 14
        "  memcached:\n"  # 15
        "    server:\n"  # 16
        "      replicas: three\n"  # 17
    )
    add_site(site_repo, "first", minimal("first", extra))
    result = run_build(kkc, site_repo, "first")
    p = "sites/first/site.yaml"
    assert_problems(
        result,
        f'{p}:8:5: KKC124 overlay "monitorng" not found in overlays/; did you mean "monitoring"?',
        f"{p}:11:20: KKC121 services.keystone.adminPassword: looks like a plain-text secret; "
        "secret values never go in site files: reference one under secrets.refs "
        "(value not shown)",
        f'{p}:12:11: KKC110 services.keystone.api.replica: unknown key; did you mean "replicas"?',
        f'{p}:13:3: KKC110 services.glanse: unknown key; did you mean "glance"?',
        f"{p}:17:17: KKC111 services.memcached.server.replicas: must be of integer type",
    )
    assert SECRET not in result.output


def test_problems_of_every_layer_in_one_run(site_repo: Path, kkc) -> None:
    """A YAML error in the fleet defaults does not hide the problems of the site file."""
    _break_fleet_defaults(site_repo, "region: [FRA1\n")
    add_site(site_repo, "both", minimal("both", "regoin: FRA1\n"))
    result = run_build(kkc, site_repo, "both")
    assert_problems(
        result,
        'sites/both/site.yaml:7:1: KKC110 regoin: unknown key; did you mean "region"?',
        "sites/defaults.yaml:19:1: KKC101 YAML syntax error: expected ',' or ']', "
        "but got '<stream end>'",
    )


def test_secret_and_schema_problems_of_one_mapping(site_repo: Path, kkc) -> None:
    """A plain-text secret is reported once, never validated (its value is in no message),
    and the schema still checks its neighbours."""
    extra = f"gitops:\n  token: {SECRET}\n  interval: soon\n"
    add_site(site_repo, "both", minimal("both", extra))
    result = run_build(kkc, site_repo, "both")
    p = "sites/both/site.yaml"
    assert_problems(
        result,
        f"{p}:8:10: KKC121 gitops.token: looks like a plain-text secret; secret values never "
        "go in site files: reference one under secrets.refs (value not shown)",
        f'{p}:9:13: KKC112 gitops.interval: "soon" does not match the expected format',
    )
    assert SECRET not in result.output


def test_missing_required_keys_point_at_the_mapping(site_repo: Path, kkc) -> None:
    """A required key is missing from a mapping: the problem points at that mapping's key;
    at the top level, at the document's first key (not at 1:1 above the comments)."""
    data = (
        "# a site without a name\n"  # 1
        "\n"  # 2
        "schemaVersion: 1\n"  # 3
        "namespace: openstack\n"  # 4
        "endpoints:\n"  # 5
        "  hosts:\n"  # 6
        "    keystone: id.example.com\n"  # 7
        "openstack:\n"  # 8
        "  release: null\n"  # 9
        "secrets:\n"  # 10
        "  store:\n"  # 11
        "    name: null\n"  # 12
    )
    add_site(site_repo, "req", data)
    result = run_build(kkc, site_repo, "req")
    p = "sites/req/site.yaml"
    assert_problems(
        result,
        f"{p}:3:1: KKC113 name: required key missing",
        f"{p}:8:1: KKC113 openstack.release: {RELEASE_MISSING.format(site='req')}",
        f"{p}:11:3: KKC113 secrets.store.name: required key missing",
    )


def test_the_release_is_never_a_default(site_repo: Path, kkc) -> None:
    """kkc has no built-in release: with neither the fleet defaults nor the site pinning
    openstack.release, the build fails at the site file (its openstack mapping, else its
    first key) and says how to pin one."""
    fleet = site_repo / "sites" / "defaults.yaml"
    pin = '  release: "2025.1"   # the release of every site that does not pin its own\n'
    assert pin in fleet.read_text()
    fleet.write_text(fleet.read_text().replace(pin, ""))
    commit(site_repo, ["sites/defaults.yaml"])
    add_site(site_repo, "norel", minimal("norel", "openstack:\n  distro: ubuntu\n"))
    add_site(site_repo, "bare", minimal("bare"))
    hint = (
        "openstack.release: required key missing: kkc has no default OpenStack release; pin "
        "one in sites/{0}/site.yaml or in sites/defaults.yaml (supported: 2025.1, 2026.1, "
        "2026.2)"
    )
    result = run_build(kkc, site_repo, "norel")
    assert_problems(result, f"sites/norel/site.yaml:7:1: KKC113 {hint.format('norel')}")
    result = run_build(kkc, site_repo, "bare")
    assert_problems(result, f"sites/bare/site.yaml:1:1: KKC113 {hint.format('bare')}")
    # the examples pin their own release and still build
    result = kkc(site_repo, "render", "site-b")
    assert result.exit_code == 0, result.output


def _break_fleet_defaults(repo: Path, extra: str) -> None:
    path = repo / "sites" / "defaults.yaml"
    text = path.read_text()
    assert len(text.splitlines()) == 17, "sites/defaults.yaml changed; update the line numbers"
    write(repo, "sites/defaults.yaml", text + extra)
    commit(repo, ["sites/defaults.yaml"])


def test_errors_in_fleet_defaults_point_at_that_file(site_repo: Path, kkc) -> None:
    _break_fleet_defaults(
        site_repo, "regoin: FRA1\nservices:\n  memcached:\n    server:\n      memoryMB: lots\n"
    )
    result = run_build(kkc, site_repo, "site-a")
    assert_problems(
        result,
        'sites/defaults.yaml:18:1: KKC110 regoin: unknown key; did you mean "region"?',
        "sites/defaults.yaml:22:17: KKC111 services.memcached.server.memoryMB: must be of "
        "integer type",
    )


def test_yaml_error_in_fleet_defaults(site_repo: Path, kkc) -> None:
    _break_fleet_defaults(site_repo, "region: [FRA1\n")
    result = run_build(kkc, site_repo, "site-a")
    assert_problems(
        result,
        "sites/defaults.yaml:19:1: KKC101 YAML syntax error: expected ',' or ']', "
        "but got '<stream end>'",
    )


def test_resolved_value_error_points_at_the_layer_that_set_it(site_repo: Path, kkc) -> None:
    """Cross-layer checks (here KKC120) point at the file that set the offending value."""
    _break_fleet_defaults(site_repo, "services:\n  memcached:\n    enabled: false\n")
    result = run_build(kkc, site_repo, "site-a")
    assert_problems(
        result,
        "sites/defaults.yaml:20:14: KKC120 services.memcached.enabled: keystone is enabled "
        "and needs memcached; enable memcached or disable keystone",
        "sites/defaults.yaml:20:14: KKC120 services.memcached.enabled: horizon is enabled "
        "and needs memcached; enable memcached or disable horizon",
    )


def test_inherited_ssh_url_without_secret_points_at_the_fleet_defaults(
    site_repo: Path, kkc
) -> None:
    """site-b (Flux) inherits an SSH repoURL from sites/defaults.yaml and names no
    secretRef: the problem is where the URL is set."""
    path = site_repo / "sites" / "defaults.yaml"
    old = "  repoURL: https://git.example.com/cloud/openstack-sites.git\n"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, old.replace("https://", "ssh://git@")))
    commit(site_repo, ["sites/defaults.yaml"])
    result = run_build(kkc, site_repo, "site-b")
    assert_problems(
        result,
        "sites/defaults.yaml:16:12: KKC160 gitops.repoURL: Flux reaches an SSH repository "
        "only with a key: name the Secret that holds it (identity and known_hosts, in "
        "gitops.namespace) in gitops.secretRef",
    )


def test_required_key_misspelt_is_reported_once(site_repo: Path, kkc) -> None:
    """A misspelt required key is one problem (KKC110 with its did-you-mean), not also
    KKC113; a required key missing elsewhere is still reported in the same run."""
    extra = (
        "secrets:\n"  # 7
        "  refs:\n"  # 8
        "    keystone_admin_password: {kye: openstack/keystone}\n"  # 9
        "openstack:\n"  # 10
        "  release: null\n"  # 11
    )
    add_site(site_repo, "misspelt", minimal("misspelt", extra))
    result = run_build(kkc, site_repo, "misspelt")
    p = "sites/misspelt/site.yaml"
    assert_problems(
        result,
        f'{p}:9:31: KKC110 secrets.refs.keystone_admin_password.kye: unknown key; did you mean "key"?',
        f"{p}:10:1: KKC113 openstack.release: {RELEASE_MISSING.format(site='misspelt')}",
    )
