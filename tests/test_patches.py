"""Site patches (sites/<site>/patches/): placed in the stage of their target, applied last,
and refused before anything is written when malformed, dangling or carrying secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import snapshot
from helpers import commit, write

SMP = """\
# nova-api pods get a priority class
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nova-api
spec:
  template:
    spec:
      priorityClassName: openstack-critical
"""

JSON6902 = """\
target:
  kind: Deployment
  name: keystone-.*
patch:
  - op: add
    path: /metadata/annotations/example.com~1owner
    value: team-identity
"""

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: nova-api-kolla
data:
  extra.txt: hello
"""


def add_patches(root: Path, site: str = "site-a", **files: str) -> None:
    paths = [write(root, f"sites/{site}/patches/{name}", text) for name, text in files.items()]
    commit(root, [p.relative_to(root).as_posix() for p in paths], "patches")


def docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


# kustomize's JSON patch (evanphx/json-patch v4) replaces a missing key of a map by adding
# it, where RFC 6902 refuses: kkc's check of the operations must accept it too
REPLACE_MISSING = """\
target: {kind: Deployment, name: keystone-api}
patch:
  - {op: replace, path: /spec/template/spec/priorityClassName, value: keystone-critical}
"""


def test_patches_land_in_the_stage_of_their_target_after_kkc_patches(site_repo: Path, kkc) -> None:
    add_patches(
        site_repo,
        **{
            "10-smp.yaml": SMP,
            "15-json.yaml": REPLACE_MISSING,
            "20-json.yaml": JSON6902,
            "30-cm.yaml": CONFIGMAP,
        },
    )
    result = kkc(site_repo, "build", "site-a")
    assert result.exit_code == 0, result.output
    stages = site_repo / "deploy" / "site-a" / "stages"
    services = yaml.safe_load((stages / "services" / "kustomization.yaml").read_text())
    assert services["patches"][-2:] == [
        {"path": "site-patches/10-smp.yaml"},
        {"path": "site-patches/30-cm.yaml"},
    ]
    identity = yaml.safe_load((stages / "identity" / "kustomization.yaml").read_text())
    assert identity["patches"][-1] == {
        "path": "site-patches/20-json.yaml",
        "target": {"kind": "Deployment", "name": "keystone-.*"},
    }
    assert yaml.safe_load((stages / "identity" / "site-patches" / "20-json.yaml").read_text()) == [
        {"op": "add", "path": "/metadata/annotations/example.com~1owner", "value": "team-identity"}
    ]
    # in no other stage
    for other in ("infra", "db", "register", "compute", "finish"):
        assert not (stages / other / "site-patches").exists(), other

    rendered = kkc(site_repo, "render", "site-a")
    assert rendered.exit_code == 0, rendered.output
    objs = {(d["kind"], d["metadata"]["name"]): d for d in docs(rendered.stdout)}
    nova = objs[("Deployment", "nova-api")]["spec"]["template"]["spec"]
    assert nova["priorityClassName"] == "openstack-critical"
    keystone = objs[("Deployment", "keystone-api")]
    assert keystone["metadata"]["annotations"]["example.com/owner"] == "team-identity"
    assert keystone["spec"]["template"]["spec"]["priorityClassName"] == "keystone-critical"
    [cm] = [d for (k, n), d in objs.items() if k == "ConfigMap" and n.startswith("nova-api-kolla-")]
    assert cm["data"]["extra.txt"] == "hello"


def test_a_patch_changes_the_site_digest_and_rebuilds_identically(
    small_site_repo: Path, kkc
) -> None:
    """On the keystone-only site-k, with the JSON 6902 patch of keystone's Deployments."""
    from kkc.site import load_site

    before = load_site(small_site_repo, "site-k").digest
    add_patches(small_site_repo, site="site-k", **{"10-json.yaml": JSON6902})
    assert load_site(small_site_repo, "site-k").digest != before
    assert kkc(small_site_repo, "build", "site-k").exit_code == 0
    tree = snapshot(small_site_repo / "deploy")
    assert any(b"team-identity" in data for data in tree.values()), "the patch is not built"
    assert kkc(small_site_repo, "build", "site-k").exit_code == 0
    assert snapshot(small_site_repo / "deploy") == tree


P = "sites/site-a/patches/p.yaml"


def build_with_bad_patch(site_repo: Path, kkc, text: str, expected: str):
    """`kkc build site-a` with the patch ``text``: exit 2, exactly ``expected`` on stderr,
    and not a byte of the repository changed."""
    add_patches(site_repo, **{"p.yaml": text})
    before = snapshot(site_repo)
    result = kkc(site_repo, "build", "site-a")
    assert result.exit_code == 2, result.output
    assert result.stderr == expected + "\n"
    assert snapshot(site_repo) == before
    return result


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param(
            SMP.replace("name: nova-api", "name: nova-apii"),
            f"{P}:5:9: KKC141 the patch target Deployment/nova-apii is not in the output of "
            'site site-a; did you mean "nova-api"?',
            id="KKC141-smp",
        ),
        pytest.param(
            JSON6902.replace("kind: Deployment", "kind: StatefulSet"),
            f"{P}:3:9: KKC141 the patch target StatefulSet/keystone-.* is not in the output of "
            "site site-a",
            id="KKC141-json6902",
        ),
        pytest.param(
            "just: text\n",
            f"{P}:1:1: KKC140 a patch file is a strategic-merge patch (apiVersion, kind, "
            "metadata.name and the fields to change) or a JSON 6902 patch ({target: {kind, "
            "name}, patch: [operations]})",
            id="KKC140-neither",
        ),
        pytest.param(
            "target: {kind: Deployment, name: x, labelSelector: a=b}\npatch:\n  - {op: remove, path: /x}\n",
            f'{P}:1:37: KKC140 target key "labelSelector" is not supported (use group, '
            "version, kind, name, namespace)",
            id="KKC140-target-key",
        ),
        pytest.param(
            "target: {kind: Deployment, name: x}\npatch:\n  - {op: frob, path: /x}\n",
            f"{P}:3:5: KKC140 operation 1 needs op (add, remove, replace, move, copy, test) "
            'and a path starting with "/"',
            id="KKC140-op",
        ),
        pytest.param(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: keystone-secrets\n"
            "stringData:\n  admin_password: hunter2\n",
            f"{P}:5:1: KKC142 a patch may not put literal data into a Secret (stringData); "
            "secrets come from the secret store (see `kkc secrets SITE`)",
            id="KKC142-secret-data",
        ),
        pytest.param(
            "target: {kind: Secret, name: keystone-secrets}\npatch:\n"
            "  - {op: add, path: /data/x, value: aHVudGVyMg==}\n",
            f"{P}:3:37: KKC142 a patch may not put literal data into a Secret (/data/x); "
            "secrets come from the secret store (see `kkc secrets SITE`)",
            id="KKC142-secret-json6902",
        ),
        pytest.param(
            "target: {kind: Deployment, name: glance-api}\npatch:\n  - op: add\n"
            "    path: /spec/template/spec/containers/0/env/-\n"
            "    value: {name: DB_PASSWORD, value: hunter2}\n",
            f"{P}:5:39: KKC142 environment variable DB_PASSWORD gets a literal value; take it "
            "from a Secret (valueFrom.secretKeyRef)",
            id="KKC142-env",
        ),
        pytest.param(
            "target: {kind: Deployment, name: keystone-api}\npatch:\n"
            "  - {op: add, path: /spec/template/spec/priorityClassName, value: high}\n"
            "  - op: replace\n    path: /spec/template/spec/nosuch/field\n    value: x\n",
            f"{P}:4:5: KKC143 operation 2 (replace /spec/template/spec/nosuch/field) does not "
            "apply to Deployment/keystone-api: /spec/template/spec/nosuch does not exist",
            id="KKC143-replace-missing-parent",
        ),
        pytest.param(
            "target: {kind: Deployment, name: keystone-api}\npatch:\n"
            "  - {op: remove, path: /spec/template/spec/containers/0/name}\n"
            "  - {op: move, from: /spec/template/spec/containers/0/name, path: /metadata/x}\n",
            f"{P}:4:5: KKC143 operation 2 (move /metadata/x from "
            "/spec/template/spec/containers/0/name) does not apply to Deployment/keystone-api: "
            "/spec/template/spec/containers/0/name does not exist",
            id="KKC143-move-after-remove",
        ),
        *(
            pytest.param(
                "target: {kind: Deployment, name: glance-api}\npatch:\n  - op: add\n"
                "    path: /spec/template/spec/containers/0/env/-\n"
                f"    value: {{name: {name}, value: hunter2}}\n",
                f"{P}:5:{len(name) + 28}: KKC142 environment variable {name} gets a literal "
                "value; take it from a Secret (valueFrom.secretKeyRef)",
                id=f"KKC142-env-{name}",
            )
            for name in ("AWS_SECRET_ACCESS_KEY", "MYSQL_PWD", "SSH_PRIVATE_KEY", "STRIPE_API_KEY")
        ),
        pytest.param(
            "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata:\n"
            "  name: keystone-secrets\nspec:\n  target:\n    template:\n      data:\n"
            '        keystone.conf: "connection = mysql+pymysql://keystone:{{ .x }}@db/keystone"\n'
            "        admin-password: hunter2\n",
            f"{P}:10:25: KKC142 a patch may not put literal data into an ExternalSecret's "
            "template (spec.target.template.data.admin-password); a template value refers to "
            "the data the store returns ({{ .key }}); secrets come from the secret store "
            "(see `kkc secrets SITE`)",
            id="KKC142-externalsecret-template",
        ),
        pytest.param(
            "target: {kind: ExternalSecret, name: keystone-secrets}\npatch:\n"
            "  - {op: add, path: /spec/target/template/data/a, value: '{{ .a }}'}\n"
            "  - op: replace\n    path: /spec/target/template\n    value:\n      data:\n"
            "        admin-password: hunter2\n",
            f"{P}:8:25: KKC142 a patch may not put literal data into an ExternalSecret's "
            "template (spec.target.template.data.admin-password); a template value refers to "
            "the data the store returns ({{ .key }}); secrets come from the secret store "
            "(see `kkc secrets SITE`)",
            id="KKC142-externalsecret-json6902",
        ),
    ],
)
def test_bad_patches_exit_2_and_write_nothing(
    site_repo: Path, kkc, text: str, expected: str
) -> None:
    result = build_with_bad_patch(site_repo, kkc, text, expected)
    assert "hunter2" not in result.output and "aHVudGVyMg" not in result.output


def test_secret_looking_names() -> None:
    """Environment variable names (snake_case) with a secret word anywhere or ending in _KEY
    are secret-looking; names that say they hold something else are not, nor are the
    camelCase site keys that only mention a secret (site.py checks site keys with it)."""
    from kkc.site import SECRETISH_KEY

    secret = [
        "DB_PASSWORD",
        "RABBITMQ_PASS",
        "ERLANG_COOKIE",
        "OS_CREDENTIALS",
        "GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "MYSQL_PWD",
        "MYSQL_ROOT_PASSWD",
        "TOKEN_VALUE",
        "SSH_PRIVATE_KEY",
        "STRIPE_API_KEY",
        "adminPassword",
        "token",
        "secret",
    ]
    not_secret = [
        "DB_PASSWORD_FILE",
        "TOKEN_URL",
        "SECRET_NAME",
        "TOKEN_TTL",
        "SSH_PUBLIC_KEY",
        "PUBLIC_KEY",
        "ROUTING_KEY",
        "PWD",
        "KEYSTONE_URL",
        "OS_PROJECT_NAME",
        "KEY",
        "secretUuid",
        "secretRef",
        "tokenExpiration",
        "topologyKey",
        "key",
        "secrets",
    ]
    assert [n for n in secret if not SECRETISH_KEY.search(n)] == []
    assert [n for n in not_secret if SECRETISH_KEY.search(n)] == []


def test_literal_free_patches_are_accepted(tmp_path: Path) -> None:
    """Non-secret variables and an ExternalSecret template that only refers to the fetched
    data load without KKC142."""
    from kkc import patches

    write(
        tmp_path,
        "sites/s/patches/env.yaml",
        "target: {kind: Deployment, name: glance-api}\npatch:\n"
        "  - {op: add, path: /spec/template/spec/containers/0/env/-, "
        "value: {name: DB_PASSWORD_FILE, value: /run/secrets/db}}\n"
        "  - {op: add, path: /spec/template/spec/containers/0/env/-, "
        "value: {name: SSH_PUBLIC_KEY, value: ssh-ed25519 AAAA}}\n",
    )
    write(
        tmp_path,
        "sites/s/patches/es.yaml",
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata:\n"
        "  name: keystone-secrets\nspec:\n  target:\n    template:\n      data:\n"
        "        admin-password: '{{ .admin }}'\n        old: null\n",
    )
    found, problems = patches.load(tmp_path, "s")
    assert problems == []
    assert [p.file for p in found] == ["env.yaml", "es.yaml"]


def test_a_patch_copied_from_render_keeps_the_site_namespace(site_repo: Path, kkc) -> None:
    """`kkc render` output names the site's namespace; a patch copied from it matches, and
    its stage copy leaves the namespace to the stage's kustomization."""
    smp = SMP.replace("  name: nova-api\n", "  name: nova-api\n  namespace: openstack\n")
    json6902 = JSON6902.replace(
        "  name: keystone-.*\n", "  name: keystone-.*\n  namespace: openstack\n"
    )
    add_patches(site_repo, **{"10-smp.yaml": smp, "20-json.yaml": json6902})
    result = kkc(site_repo, "build", "site-a")
    assert result.exit_code == 0, result.output
    stages = site_repo / "deploy" / "site-a" / "stages"
    staged = yaml.safe_load((stages / "services" / "site-patches" / "10-smp.yaml").read_text())
    assert staged["metadata"] == {"name": "nova-api"}
    identity = yaml.safe_load((stages / "identity" / "kustomization.yaml").read_text())
    assert identity["patches"][-1] == {
        "path": "site-patches/20-json.yaml",
        "target": {"kind": "Deployment", "name": "keystone-.*"},
    }
    objs = {
        (d["kind"], d["metadata"]["name"]): d
        for d in docs(kkc(site_repo, "render", "site-a").stdout)
    }
    nova = objs[("Deployment", "nova-api")]
    assert nova["metadata"]["namespace"] == "openstack"
    assert nova["spec"]["template"]["spec"]["priorityClassName"] == "openstack-critical"
    keystone = objs[("Deployment", "keystone-api")]
    assert keystone["metadata"]["annotations"]["example.com/owner"] == "team-identity"


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param(
            SMP.replace("  name: nova-api\n", "  name: nova-api\n  namespace: nova\n"),
            f'{P}:6:14: KKC141 the patch target Deployment/nova-api is not in namespace "nova": '
            "site site-a renders it in namespace openstack (leave the namespace out, or name "
            "that one)",
            id="smp",
        ),
        pytest.param(
            "target: {kind: Deployment, name: keystone-api, namespace: identity}\npatch:\n"
            "  - {op: remove, path: /spec/replicas}\n",
            f"{P}:1:59: KKC141 the patch target Deployment/keystone-api is not in namespace "
            '"identity": site site-a renders it in namespace openstack (leave the namespace '
            "out, or name that one)",
            id="json6902",
        ),
    ],
)
def test_a_patch_naming_another_namespace_is_KKC141_at_the_namespace(
    site_repo: Path, kkc, text: str, expected: str
) -> None:
    build_with_bad_patch(site_repo, kkc, text, expected)


def test_a_kustomize_failure_caused_by_a_patch_names_the_patch_file(site_repo: Path, kkc) -> None:
    """The tree builds without the site's patches; kustomize's error is located at the one
    patch that fails in its stage, not at deploy/site-a/kustomization.yaml."""
    bad = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: nova-api\n"
    bad += "spec:\n  template:\n    spec:\n      containers: oops\n"
    add_patches(site_repo, **{"10-smp.yaml": SMP, "20-bad.yaml": bad, "30-cm.yaml": CONFIGMAP})
    before = snapshot(site_repo)
    result = kkc(site_repo, "build", "site-a")
    assert result.exit_code == 3, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith(
        "sites/site-a/patches/20-bad.yaml:1:1: KKC300 kustomize build failed: "
    ), line
    assert "stages/services" in line and line.endswith("oops"), line
    assert snapshot(site_repo) == before


def test_output_errors_with_output_json_name_the_patch_file(site_repo: Path, kkc) -> None:
    """Exit 3 with -o json: the problems report on stdout, as for exit 2."""
    bad = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: nova-api\n"
    bad += "spec:\n  template:\n    spec:\n      containers: oops\n"
    add_patches(site_repo, **{"20-bad.yaml": bad})
    result = kkc(site_repo, "build", "site-a", "-o", "json")
    assert result.exit_code == 3, result.output
    assert result.stderr == ""
    [problem] = json.loads(result.stdout)["problems"]
    assert {k: v for k, v in problem.items() if k != "message"} == {
        "file": "sites/site-a/patches/20-bad.yaml",
        "line": 1,
        "col": 1,
        "code": "KKC300",
        "severity": "error",
    }
    assert problem["message"].startswith("kustomize build failed: ")


def test_a_patch_cannot_do_what_the_site_definition_refuses(small_site_repo: Path, kkc) -> None:
    """services.mariadb.server.replicas > 1 is KKC126 in site.yaml; a site patch setting
    the replicas of StatefulSet/mariadb (or, as JSON 6902, of rabbitmq) is the same error,
    at the patch, exit 2, nothing written."""
    add_patches(
        small_site_repo,
        "site-k",
        **{
            "mariadb.yaml": "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n"
            "  name: mariadb\nspec:\n  replicas: 3\n",
            "rabbitmq.yaml": "target:\n  kind: StatefulSet\n  name: rabbit.*\npatch:\n"
            "  - {op: add, path: /metadata/labels/x, value: y}\n"
            "  - {op: replace, path: /spec/replicas, value: 2}\n",
        },
    )
    result = kkc(small_site_repo, "build", "site-k")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "sites/site-k/patches/mariadb.yaml:4:9: KKC126 StatefulSet/mariadb gets 3 replicas: "
        "services.mariadb.server.replicas must be 1: Galera clustering is not supported by kkc "
        "with provider kolla (services.mariadb.provider: mariadb-operator runs a Galera "
        "cluster) (a site patch cannot do what the site definition refuses)",
        "sites/site-k/patches/rabbitmq.yaml:6:5: KKC126 StatefulSet/rabbitmq gets 2 replicas: "
        "services.rabbitmq.server.replicas must be 1: RabbitMQ clustering is not supported by "
        "kkc with provider kolla (services.rabbitmq.provider: rabbitmq-operator runs a "
        "RabbitMQ cluster) (a site patch cannot do what the site definition refuses)",
    ]
    assert not (small_site_repo / "deploy").exists()
    assert kkc(small_site_repo, "check", "site-k").exit_code == 2
