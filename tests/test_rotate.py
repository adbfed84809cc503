"""kkc rotate / secrets.rotation: a rotation generation per password refreshes exactly the
ExternalSecrets that fetch it, re-runs exactly the Jobs that apply it and rolls exactly the
workloads that read it (annotations only, the generation, never a value); --plan writes
nothing; the edit keeps comments; unknown names are refused with did-you-mean."""

from __future__ import annotations

import configparser
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import snapshot
from kkc import pipeline, rotate, rotation
from kkc.kolla import SECRET_DIR
from kkc.loader import load_site
from kkc.outputs import compute
from kkc.pipeline import object_key
from kkc.yamlio import load_stream

PREFIX = rotation.ANNOTATION


def _objects(root: Path, name: str, text: str | None = None) -> dict[str, dict[str, Any]]:
    site = load_site(root, name, site_text=text)
    return {object_key(o): o for o in load_stream(pipeline.render(root, site, None).manifests)}


def _rotated_text(root: Path, name: str, gens: dict[str, int]) -> str:
    text = (root / "sites" / name / "site.yaml").read_text()
    return rotate.edited_text(text, gens, f"sites/{name}/site.yaml")


def _without_rotation(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with what a rotation adds removed: its annotations, the ExternalSecret's
    marker keys, the containers' KKC_ROTATION_* variables (and what they leave empty)."""
    out = copy.deepcopy(obj)
    spec = out.get("spec") or {}
    template = spec.get("template")
    for meta in [out.get("metadata") or {}, (template or {}).get("metadata") or {}]:
        notes = meta.get("annotations") or {}
        for key in [k for k in notes if k.startswith(PREFIX)]:
            del notes[key]
        if "annotations" in meta and not notes:
            del meta["annotations"]
    if isinstance(template, dict) and template.get("metadata") == {}:
        del template["metadata"]
    target = spec.get("target") or {}
    data = (target.get("template") or {}).get("data") or {}
    for key in [k for k in data if k.startswith("kkc-rotation-")]:
        del data[key]
    if "template" in target and not data:
        del target["template"]
    pod = (template or {}).get("spec") or {}
    for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        c["env"] = [e for e in c.get("env") or [] if not e["name"].startswith("KKC_ROTATION_")]
        if not c["env"]:
            del c["env"]
    return out


def _waiting(obj: dict[str, Any]) -> dict[str, dict[str, str]]:
    """container -> {KKC_ROTATION_* variable: "Secret/key"} of a pod template."""
    pod = obj["spec"]["template"]["spec"]
    out = {}
    for c in [*(pod.get("initContainers") or []), *pod["containers"]]:
        found = {
            e["name"]: "{name}/{key}".format(**e["valueFrom"]["secretKeyRef"])
            for e in c.get("env") or []
            if e["name"].startswith("KKC_ROTATION_")
        }
        if found:
            out[c["name"]] = found
    return out


def _changes(root: Path, name: str, gens: dict[str, int]) -> dict[str, dict[str, Any]]:
    """The objects that rotating ``gens`` changes (key -> the new object), after checking
    that nothing is added or removed and that each change is rotation annotations only."""
    before = _objects(root, name)
    after = _objects(root, name, _rotated_text(root, name, gens))
    assert before.keys() == after.keys()
    changed = {k: after[k] for k in after if after[k] != before[k]}
    for key, obj in changed.items():
        assert _without_rotation(obj) == before[key], key
    return changed


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    """The rotation annotations of an ExternalSecret, or of a pod template."""
    meta = (
        obj["metadata"] if obj["kind"] == "ExternalSecret" else obj["spec"]["template"]["metadata"]
    )
    return {k: v for k, v in meta["annotations"].items() if k.startswith(PREFIX)}


NOVA_CONTROL = [
    "Deployment/openstack/nova-api",
    "Deployment/openstack/nova-conductor",
    "Deployment/openstack/nova-metadata",
    "Deployment/openstack/nova-novncproxy",
    "Deployment/openstack/nova-scheduler",
]


def test_database_password_reruns_db_sync_and_rolls_its_readers_only(example_repo: Path):
    changed = _changes(example_repo, "site-a", {"nova_database_password": 3})
    assert sorted(changed) == sorted(
        [
            "ExternalSecret/openstack/nova-secrets",
            "Job/openstack/nova-db-sync",
            *NOVA_CONTROL,
        ]
    )  # not nova-compute (its drop-in has no database), not the discover-hosts CronJob
    for obj in changed.values():
        assert _annotations(obj) == {f"{PREFIX}nova_database_password": "3"}
    # the Secret says which generation it holds; what applies or reads it waits for that
    es = changed["ExternalSecret/openstack/nova-secrets"]
    assert es["spec"]["target"]["template"]["data"]["kkc-rotation-nova_database_password-3"] == "3"
    marker = {
        "KKC_ROTATION_NOVA_DATABASE_PASSWORD": "nova-secrets/kkc-rotation-nova_database_password-3"
    }
    assert _waiting(changed["Job/openstack/nova-db-sync"]) == {"db-init": marker}
    assert _waiting(changed["Deployment/openstack/nova-api"]) == {"nova-api": marker}


def _env(obj: dict[str, Any], container: int = 0) -> dict[str, Any]:
    c = obj["spec"]["template"]["spec"]["containers"][container]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env") or []}


def _drop_in(es: dict[str, Any], key: str) -> str:
    return es["spec"]["target"]["template"]["data"][key]


def test_service_user_rotates_in_two_phases_through_a_new_user(example_repo: Path):
    gens = {"glance_keystone_password": 2, "nova_keystone_password": 1, "heat_keystone_password": 1}
    before = _objects(example_repo, "site-a")
    after = _objects(example_repo, "site-a", _rotated_text(example_repo, "site-a", gens))
    ns = "openstack"
    # phase 2 is a Job of its own in stage finish (after every roll): it deletes the
    # users of the earlier generations, and only once their successor exists
    added = sorted(after.keys() - before.keys())
    assert added[0].startswith(f"ConfigMap/{ns}/kkc-ks-retire-")  # the script
    # (heat: one phase, no retire Job)
    assert added[1:] == [f"Job/{ns}/glance-ks-retire", f"Job/{ns}/nova-ks-retire"]
    assert before.keys() - after.keys() == set()
    retire = after[f"Job/{ns}/glance-ks-retire"]
    assert retire["metadata"]["labels"][rotation.STAGE_LABEL] == "finish"
    assert retire["metadata"]["annotations"]["kkc.openstack.org/retires"] == (
        "glance_keystone_password"
    )
    assert json.loads(_env(retire)["KKC_RETIRE"]) == {
        "retire": ["glance", "glance-g1"],
        "user": "glance-g2",
    }
    assert "SERVICE_PASSWORD" not in _env(retire)  # it reads no service password
    # phase 1: ks-register creates the generation's user (the old one keeps its password)
    register = json.loads(_env(after[f"Job/{ns}/glance-ks-register"])["KKC_REGISTRATION"])
    assert register["user"] == "glance-g2"
    # the consumers switch through their drop-in: user and password from one Secret
    glance = _drop_in(after[f"ExternalSecret/{ns}/glance-secrets"], "glance.conf")
    assert '[keystone_authtoken]\npassword = {{ index . "keystone-password" }}\n' in glance
    assert "username = glance-g2\n" in glance
    nova = after[f"ExternalSecret/{ns}/nova-secrets"]
    for key in ("nova.conf", "nova-compute.conf"):
        text = _drop_in(nova, key)
        sections = [s for s in ("service_user", "placement", "neutron") if f"[{s}]" in text]
        assert sections == ["service_user", "placement", "neutron"]
        assert text.count("username = nova-g1\n") == len(sections) + (key == "nova.conf")
    # no ConfigMap changes (their hashes would re-run every Job that mounts them)
    configmaps = {k for k in before if k.startswith("ConfigMap/")}
    assert {k: after[k] for k in configmaps} == {k: before[k] for k in configmaps}
    changed = sorted(k for k in before if after[k] != before[k])
    assert changed == sorted(
        [
            f"DaemonSet/{ns}/nova-compute",  # [service_user] of nova-compute.conf
            f"Deployment/{ns}/glance-api",
            *NOVA_CONTROL,
            *(f"Deployment/{ns}/{d}" for d in ("heat-api", "heat-api-cfn", "heat-engine")),
            f"ExternalSecret/{ns}/glance-secrets",
            f"ExternalSecret/{ns}/heat-secrets",
            f"ExternalSecret/{ns}/nova-secrets",
            f"Job/{ns}/glance-ks-register",
            f"Job/{ns}/heat-ks-register",
            f"Job/{ns}/nova-ks-register",
        ]
    )
    # Heat's trusts name its user's ID: the user stays (one phase)
    register = json.loads(_env(after[f"Job/{ns}/heat-ks-register"])["KKC_REGISTRATION"])
    assert register["user"] == "heat"
    assert "username" not in _drop_in(after[f"ExternalSecret/{ns}/heat-secrets"], "heat.conf")


def _diff(
    root: Path, name: str, gens: dict[str, Any]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(before, after, the objects rotating ``gens`` changes) of a site; nothing removed."""
    before = _objects(root, name)
    after = _objects(root, name, _rotated_text(root, name, gens))
    assert before.keys() - after.keys() == set()
    return before, after, {k: after[k] for k in before if after[k] != before[k]}


TRANSPORT_USERS = [
    "DaemonSet/openstack-lab/nova-compute",
    "Deployment/openstack-lab/glance-api",
    "Deployment/openstack-lab/neutron-ovn-maintenance-worker",
    "Deployment/openstack-lab/neutron-periodic-workers",
    "Deployment/openstack-lab/neutron-rpc-server",
    "Deployment/openstack-lab/neutron-server",
    "Deployment/openstack-lab/nova-api",
    "Deployment/openstack-lab/nova-conductor",
    "Deployment/openstack-lab/nova-metadata",
    "Deployment/openstack-lab/nova-novncproxy",
    "Deployment/openstack-lab/nova-scheduler",
]


def test_rabbitmq_password_job_then_every_transport_user_rolls(example_repo: Path):
    # site-b: secrets.backend existing, so no ExternalSecret
    before, after, changed = _diff(example_repo, "site-b", {"rabbitmq_password": 1})
    assert sorted(changed) == TRANSPORT_USERS  # not RabbitMQ itself (default_pass: empty db)
    assert sorted(after.keys() - before.keys()) == ["Job/openstack-lab/rabbitmq-password"]
    job = after["Job/openstack-lab/rabbitmq-password"]
    assert job["metadata"]["labels"][rotation.STAGE_LABEL] == "db"  # before the rolls
    pod = job["spec"]["template"]["spec"]
    # rabbit@rabbitmq-0 resolves through the headless Service's domain
    assert pod["dnsConfig"] == {"searches": ["rabbitmq-headless.openstack-lab.svc.cluster.local"]}
    env = _env(job)
    assert env["RABBITMQ_NODES"] == "rabbitmq-0"
    assert env["RABBITMQ_PASSWORD"] == {
        "secretKeyRef": {"name": "rabbitmq-secrets", "key": "password"}
    }
    script = pod["containers"][0]["command"][2]
    assert "pw | $ctl change_password openstack && pw | $ctl authenticate_user openstack" in script
    assert "$RABBITMQ_PASSWORD" not in script.split("pw()")[1].split("}", 1)[1]  # stdin only
    assert _annotations(job) == {f"{PREFIX}rabbitmq_password": "1"}
    # no ExternalSecret, so nothing to wait for: the operator updates the Secret first
    assert all(_waiting(obj) == {} for obj in changed.values())


def test_root_password_rabbitmq_and_key_jobs_with_external_secrets(example_repo: Path):
    gens = {
        "database_password": 2,
        "rabbitmq_password": 1,
        "keystone-credential-keys": 1,
        "keystone-fernet-keys": 3,
    }
    before, after, changed = _diff(example_repo, "site-a", gens)
    added = sorted(after.keys() - before.keys())
    assert [k for k in added if not k.startswith("ConfigMap/")] == [
        "Job/openstack/keystone-credential-rotate",
        "Job/openstack/keystone-fernet-rotate-now",
        "Job/openstack/mariadb-root-password",
        "Job/openstack/rabbitmq-password",
    ]
    assert [k.rsplit("-", 1)[0] for k in added if k.startswith("ConfigMap/")] == [
        "ConfigMap/openstack/keystone-credential-rotate-kolla",  # keystone.conf + drop-in
        "ConfigMap/openstack/kkc-mariadb-root",  # the script
    ]
    # the root password: the ExternalSecret also fetches the previous value
    es = after["ExternalSecret/openstack/mariadb-secrets"]
    assert es["spec"]["data"][1] == {
        "secretKey": "root-password-previous",
        "remoteRef": {"key": "openstack/site-a/database_password_previous"},
    }
    root = after["Job/openstack/mariadb-root-password"]
    assert _env(root)["PREVIOUS_ROOT_PASSWORD"] == {
        "secretKeyRef": {
            "name": "mariadb-secrets",
            "key": "root-password-previous",
            "optional": True,  # a re-run signs in with the new one
        }
    }
    marker = "mariadb-secrets/kkc-rotation-database_password-2"
    assert _waiting(root) == {"root-password": {"KKC_ROTATION_DATABASE_PASSWORD": marker}}
    assert "StatefulSet/openstack/mariadb" not in changed  # no restart of the server
    # the key sets: a Job per generation, which records it on the Secret it rotates
    cred = after["Job/openstack/keystone-credential-rotate"]
    assert cred["metadata"]["annotations"]["kkc.openstack.org/rotates"] == (
        "keystone-credential-keys"
    )
    assert {k: v for k, v in _env(cred).items() if k.startswith("KKC_KEYS")} == {
        "KKC_KEYS_ACTION": "rotate-credential",
        "KKC_KEYS_GENERATION": "1",
    }
    assert cred["spec"]["template"]["spec"]["serviceAccountName"] == "keystone-keys"
    fernet = after["Job/openstack/keystone-fernet-rotate-now"]
    assert _env(fernet)["KKC_KEYS_GENERATION"] == "3"
    volumes = {v["name"] for v in fernet["spec"]["template"]["spec"]["volumes"]}
    assert "kolla-secrets" not in volumes  # fernet_rotate needs no database
    # the pods read the key sets through their Secret volumes: no roll for them
    assert "Deployment/openstack/keystone-api" not in changed
    # the network policies admit the Jobs that talk to the servers, and only those
    policies = {k: v for k, v in changed.items() if k.startswith("NetworkPolicy/")}
    assert sorted(policies) == [
        "NetworkPolicy/openstack/mariadb",
        "NetworkPolicy/openstack/rabbitmq",
    ]
    rules = {k.rsplit("/", 1)[1]: v["spec"]["ingress"][-1] for k, v in policies.items()}
    assert rules["rabbitmq"] == {
        "from": [
            {
                "podSelector": {
                    "matchLabels": {
                        "app.kubernetes.io/name": "rabbitmq",
                        "app.kubernetes.io/component": "password-rotation",
                    }
                }
            }
        ],
        "ports": [{"protocol": "TCP", "port": 4369}, {"protocol": "TCP", "port": 25672}],
    }
    assert rules["mariadb"]["ports"] == [{"protocol": "TCP", "port": 3306}]


def test_admin_password(example_repo: Path):
    changed = _changes(example_repo, "site-b", {"keystone_admin_password": 1})
    assert sorted(changed) == ["Job/openstack-lab/keystone-db-sync"]  # keystone-manage bootstrap


POLICIES = {"NetworkPolicy/openstack/mariadb", "NetworkPolicy/openstack/rabbitmq"}


def test_every_password_at_once_changes_exactly_what_the_plan_lists(example_repo: Path):
    site = load_site(example_repo, "site-a")
    names = rotation.rotatable(compute(site).all_secrets())
    gens = dict.fromkeys(names, 1)
    before, after_objects, changed = _diff(example_repo, "site-a", gens)
    after = load_site(example_repo, "site-a", site_text=_rotated_text(example_repo, "site-a", gens))
    objects = list(after_objects.values())
    found = rotation.touches(after, compute(after).all_secrets(), objects, set(gens))
    actions = ("refresh", "re-run", "roll", "retire")
    listed = {f"{t.kind}/openstack/{t.name}" for t in found if t.action in actions}
    added = {k for k in after_objects.keys() - before.keys() if not k.startswith("ConfigMap/")}
    assert set(changed) - listed == POLICIES  # the rotation Jobs' access to the servers
    assert listed == (set(changed) | added) - POLICIES
    assert sorted(k for k in added if k.endswith("-ks-retire")) == [
        "Job/openstack/cinder-ks-retire",
        "Job/openstack/glance-ks-retire",
        "Job/openstack/neutron-ks-retire",
        "Job/openstack/nova-ks-retire",
        "Job/openstack/placement-ks-retire",
    ]  # not heat (one phase)
    assert [(t.label, t.passwords) for t in found if t.action == "no roll"] == [
        ("StatefulSet/mariadb", ["database_password"]),
    ]
    # RabbitMQ rolls for its Erlang cookie, not for the user's password
    assert [t.passwords for t in found if t.label == "StatefulSet/rabbitmq"] == [
        ["rabbitmq_cluster_cookie"]
    ]
    # the value of an annotation is the generation, never anything of the password
    rolled = [
        after_objects[f"{t.kind}/openstack/{t.name}"]
        for t in found
        if t.action in ("re-run", "roll")
    ]
    assert {v for obj in rolled for v in _annotations(obj).values()} == {"1"}


def test_plan_prints_the_stages_in_order_and_writes_nothing(small_site_repo: Path, kkc):
    before = snapshot(small_site_repo)
    r = kkc(small_site_repo, "rotate", "site-k", "keystone_database_password", "--plan")
    assert r.exit_code == 0, r.output
    assert snapshot(small_site_repo) == before
    lines = r.stdout.splitlines()
    assert lines[:7] == [
        "site-k: rotation of keystone_database_password (generation 1), in the controller's order:",
        "1. stage infra",
        "   refreshes  ExternalSecret/keystone-secrets (keystone_database_password): re-fetches",
        "2. stage db",
        "   re-runs    Job/keystone-db-sync (keystone_database_password): db-init: sets the "
        "password of the MariaDB user (ALTER USER)",
        "3. stage identity",
        "   rolls      Deployment/keystone-api (keystone_database_password): reads "
        "keystone-secrets",
    ]
    assert lines[-1] == "plan only: nothing written"
    assert any("one phase only (MariaDB has no dual passwords)" in line for line in lines)


def test_plan_json_and_markdown(small_site_repo: Path, kkc):
    r = kkc(small_site_repo, "rotate", "site-l", "keystone_admin_password", "--plan", "-o", "json")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    assert plan["written"] is False
    assert plan["backend"] == "existing"
    assert plan["generations"] == {"keystone_admin_password": 1}
    assert [(s["action"], s["kind"], s["name"]) for s in plan["steps"]] == [
        ("re-run", "Job", "keystone-db-sync")
    ]
    assert "keystone-secrets/admin-password" in plan["manual"][0]  # backend existing: yours
    r = kkc(
        small_site_repo, "rotate", "site-l", "keystone_admin_password", "--plan", "-o", "markdown"
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("### Rotation on site-l: `keystone_admin_password` (generation 1)\n")
    assert "| 1 | db | re-runs | `Job/keystone-db-sync` | keystone_admin_password |" in r.stdout


def test_plan_of_root_rabbitmq_and_key_sets_prints_their_phases(small_site_repo: Path, kkc):
    r = kkc(
        small_site_repo,
        "rotate",
        "site-k",
        "database_password",
        "rabbitmq_password",
        "keystone-credential-keys",
        "--plan",
    )
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "   no roll    StatefulSet/mariadb (database_password): " in out
    assert "   no roll    StatefulSet/rabbitmq (rabbitmq_password): " in out
    assert (
        "   re-runs    Job/mariadb-root-password (database_password): root-password: sets the "
        "MariaDB root password, signed in with the previous one\n"
    ) in out
    assert "   re-runs    Job/rabbitmq-password (rabbitmq_password): " in out
    assert "   re-runs    Job/keystone-credential-rotate (keystone-credential-keys): " in out
    phases = out[out.index("phases:\n") : out.index("yours (kkc cannot render these):")]
    assert phases.splitlines()[:4] == [
        "phases:",
        "  database_password:",
        "    1. apply: Job/mariadb-root-password (stage db) sets the new root password for "
        "every root account, signed in with the previous one (mariadb-secrets/"
        "root-password-previous; a re-run finds the new one applied)",
        "    2. nothing rolls: only the db-init containers sign in as root, on their next run",
    ]
    assert "  keystone-credential-keys:\n    1. apply: Job/keystone-credential-rotate" in phases
    assert "  rabbitmq_password:\n    1. apply: Job/rabbitmq-password (stage db) runs" in phases
    # where the Job finds the previous root password (site-k: External Secrets)
    assert "which the store must hold under database_password_previous" in out
    assert "rabbitmqctl change_password openstack '<new>'" not in out  # no manual step now


def test_plan_of_a_service_user_prints_its_two_phases(example_repo: Path, kkc):
    r = kkc(example_repo, "rotate", "site-b", "glance_keystone_password", "--plan", "-o", "json")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.stdout)
    assert [(s["action"], s["name"]) for s in plan["steps"]] == [
        ("re-run", "glance-ks-register"),
        ("roll", "glance-api"),
        ("retire", "glance-ks-retire"),
    ]
    assert plan["phases"] == {
        "glance_keystone_password": [
            "1. add: Job/glance-ks-register (stage register) creates the Keystone user "
            "glance-g1 with the new password and the roles of glance; glance keeps the old "
            "password, so old and new pods both get tokens",
            "2. switch: 1 workloads roll to glance-g1 (stage services)",
            "3. retire: Job/glance-ks-retire (stage finish, after every roll) deletes glance: "
            "the old password stops working",
        ]
    }
    # secrets.backend existing: the operator renders the drop-in again (new user name)
    assert "glance-secrets/glance.conf" in plan["manual"][0]


def test_rotate_edits_in_place_keeping_comments_and_builds(small_site_repo: Path, kkc):
    path = small_site_repo / "sites/site-l/site.yaml"
    original = path.read_text()
    r = kkc(small_site_repo, "rotate", "site-l", "keystone_database_password")
    assert r.exit_code == 0, r.output
    assert path.read_text() == original.replace(
        "  store: null\n", "  store: null\n  rotation:\n    keystone_database_password: 1\n"
    )
    assert r.stdout.splitlines()[0] == (
        "site-l: secrets.rotation keystone_database_password -> 1 in sites/site-l/site.yaml"
    )
    job = small_site_repo / "deploy/site-l/stages/db/rotation/keystone-db-sync-job.yaml"
    assert f'{PREFIX}keystone_database_password: "1"' in job.read_text()
    r = kkc(small_site_repo, "rotate", "site-l", "keystone_database_password")
    assert r.exit_code == 0, r.output
    assert path.read_text() == original.replace(
        "  store: null\n", "  store: null\n  rotation:\n    keystone_database_password: 2\n"
    )
    assert f'{PREFIX}keystone_database_password: "2"' in job.read_text()
    assert original.splitlines()[0] == path.read_text().splitlines()[0]  # the comment


def test_a_site_without_secrets_block_gets_one(small_site_repo: Path, kkc):
    path = small_site_repo / "sites/site-k/site.yaml"
    original = path.read_text()
    r = kkc(small_site_repo, "rotate", "site-k", "keystone_database_password", "-o", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["written"] is True
    assert (
        path.read_text() == original + "secrets:\n  rotation:\n    keystone_database_password: 1\n"
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "keystone_databse_password",
            "keystone_databse_password: not a password of this site; did you mean "
            '"keystone_database_password"?',
        ),
        (
            "nova_database_password",  # site-k has no Nova
            'nova_database_password: not a password of this site; did you mean "database_password"?',
        ),
        (
            "keystone_fernet_keys",
            "keystone_fernet_keys: the Secret keystone-fernet-keys is not a kolla password; "
            "it is created in the cluster by Job keystone-keys-setup; rotated by CronJob "
            "keystone-fernet-rotate; rotate its keys now as keystone-fernet-keys "
            "(docs/secrets.md#keys-kkc-creates)",
        ),
    ],
)
def test_unknown_names_are_refused_and_nothing_is_written(
    small_site_repo: Path, kkc, name: str, message: str
):
    before = snapshot(small_site_repo)
    r = kkc(small_site_repo, "rotate", "site-k", name, "keystone_database_password")
    assert r.exit_code == 2
    assert r.stderr.splitlines() == [f"<command line>:1:1: KKC154 {message}"]
    assert snapshot(small_site_repo) == before


def test_usage_errors(small_site_repo: Path, kkc):
    assert kkc(small_site_repo, "rotate", "site-k").exit_code == 2  # no SECRET
    r = kkc(small_site_repo, "rotate", "site-z", "database_password")
    assert r.exit_code == 2
    assert "KKC123" in r.stderr


def test_rotation_in_the_definition_is_checked(small_site_repo: Path, kkc):
    path = small_site_repo / "sites/site-k/site.yaml"
    text = path.read_text()
    path.write_text(text + "secrets:\n  rotation:\n    keystone_databse_password: 1\n")
    r = kkc(small_site_repo, "render", "site-k")
    assert r.exit_code == 2
    assert r.stderr.splitlines()[0] == (
        "sites/site-k/site.yaml:20:5: KKC154 secrets.rotation.keystone_databse_password: not a "
        'password of this site; did you mean "keystone_database_password"?'
    )
    # a value is a generation: a string (a password pasted by mistake) is refused, unshown
    path.write_text(text + "secrets:\n  rotation:\n    keystone_database_password: hunter2\n")
    r = kkc(small_site_repo, "render", "site-k")
    assert r.exit_code == 2
    assert "KKC111 secrets.rotation.keystone_database_password: must be of integer type" in r.stderr
    assert "hunter2" not in r.output


def test_kkc_set_may_set_a_generation(small_site_repo: Path, kkc):
    r = kkc(
        small_site_repo,
        "set",
        "site-k",
        "secrets.rotation.keystone_database_password=4",
        "--dry-run",
    )
    assert r.exit_code == 0, r.output
    assert "  changed  Job/openstack-k/keystone-db-sync" in r.stdout


def test_every_container_that_names_a_service_user_gets_the_generations_name(
    example_repo: Path,
):
    """Each INI section of a ConfigMap that sets ``username = <svc>`` and whose password
    comes from the drop-in its container copies from <svc>-secrets gets the generation's
    user name from that drop-in too, after a rotation of every service user (heat: one
    phase, its name stays). Outputs only: no kustomize build."""
    site = load_site(example_repo, "site-a")
    users = sorted(o.name for o in compute(site).services if o.registration)
    gens = {f"{svc}_keystone_password": 1 for svc in users}
    after = load_site(example_repo, "site-a", site_text=_rotated_text(example_repo, "site-a", gens))
    checked = 0
    for out in compute(after).services:
        secret = next((s for s in out.secrets if s.name == f"{out.name}-secrets"), None)
        templates = {k.key: k.template for k in secret.keys if k.template} if secret else {}
        for cfg in (c for configs in out.configs.values() for c in configs):
            named = {
                section
                for ini in cfg.inis.values()
                for section, opts in ini.ini.items()
                if opts.get("username") == out.name
            }
            if not named:
                continue
            secret_dir = f"{SECRET_DIR}/"
            copied = [c["source"].removeprefix(secret_dir) for c in cfg.copies]
            [drop_in] = [templates[k] for k in copied if k in templates]
            parser = configparser.ConfigParser(interpolation=None)
            parser.read_string(drop_in)
            # a section without the password signs in as nobody (the OVN metadata agent's
            # neutron.conf): its user name does not matter
            named = {s for s in named if parser.has_option(s, "password")}
            want = out.name if out.name == "heat" else f"{out.name}-g1"
            got = {s: parser.get(s, "username", fallback=out.name) for s in named}
            assert got == dict.fromkeys(named, want), (cfg.name, got)
            checked += 1
    assert checked >= 15  # the APIs, workers and agents of the six services (17 today)


def test_a_service_rabbitmq_password_of_the_operator_says_who_applies_it(example_repo: Path):
    """With rabbitmq-operator (site-a-ha) each service's RabbitMQ password is applied by the
    messaging topology operator, from the Secret its User reads; no Job of kkc's."""
    site = load_site(example_repo, "site-a-ha")
    manual, notes = rotate._kind_notes(site, "nova_rabbitmq_password", [])
    assert manual == []
    assert notes == [
        "nova_rabbitmq_password: no Job applies it: RabbitMQ's messaging topology operator "
        "sets it on the RabbitMQ user nova from Secret rabbitmq-user-nova, which its "
        "ExternalSecret refreshes first; then its readers roll (nothing kkc renders)."
    ]
    # the kolla RabbitMQ of site-a: one user openstack, rabbitmq_password, no such note
    _manual, notes = rotate._kind_notes(
        load_site(example_repo, "site-a"), "glance_keystone_password", []
    )
    assert not any("topology operator" in n for n in notes)


def test_the_root_password_of_the_galera_site_is_a_manual_step(example_repo: Path):
    """With mariadb-operator kkc renders no root-password Job: the plan's manual step says
    how to set the new value in the server."""
    manual, _notes = rotate._kind_notes(
        load_site(example_repo, "site-a-ha"), "database_password", []
    )
    [step] = manual
    assert step.startswith("database_password (MariaDB root): kkc renders no Job that changes it")
    assert "ALTER USER 'root'@'%' IDENTIFIED BY '<new>';" in step
