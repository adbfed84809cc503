"""The rotation phase of a bring-up: after every wave has run, `kkc rotate` a database
password and a Keystone service user's password of the site, as an operator with
``secrets.backend: existing`` does it: new values into the Secrets (the drop-ins rendered
again from the templates `kkc secrets` lists after the rotation), then what the new output
re-runs, rolls and retires, in the order of `kkc rotate -o json`. The service user rotates
in two phases: between its ks-register Job and the retire Job both users work, and the
services answer throughout; after the retire Job the old user is gone. Then the services
must still answer, the new passwords must work and the old ones must not."""

from __future__ import annotations

import copy
import json
import os
import secrets as pysecrets
import subprocess

import yaml

from . import apis, checks, gotmpl, render

# site -> (a database password, a service user's password); only sites whose Secrets
# exist in the namespace (no ExternalSecret, whose marker keys this harness has not)
ROTATED = {"site-b": ("placement_database_password", "glance_keystone_password")}


def _value(site, values: dict, password: str) -> str:
    for secret in site.secret_list:
        for key in secret["keys"]:
            if key.get("kollaPassword") == password and "template" not in key:
                return values[secret["name"]][key["key"]]
    raise KeyError(password)


def new_secrets(site, current: dict, names: tuple[str, ...]) -> dict:
    """``current`` with a new value for each kolla password of ``names`` (one per password,
    in every Secret that holds it) and the templates rendered again."""
    fresh = {n: pysecrets.token_hex(16) for n in names}
    out = copy.deepcopy(current)
    for secret in site.secret_list:
        values = out.get(secret["name"])
        if values is None:
            continue
        for key in secret["keys"]:
            if "template" not in key and key.get("kollaPassword") in fresh:
                values[key["key"]] = fresh[key["kollaPassword"]]
        for key in secret["keys"]:
            if "template" in key:
                values[key["key"]] = gotmpl.render(key["template"], values)
    return out


def _mariadb_login(user: str, password: str) -> bool:
    done = subprocess.run(
        ["mariadb", "-h", "127.0.0.1", "-u", user, "-e", "SELECT 1"],
        env={**os.environ, "MYSQL_PWD": password},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode == 0


def _keystone_login(run, user: str, password: str) -> bool:
    try:
        checks.token(
            f"http://keystone-api.{run.site.namespace}.svc:5000", user, password, "service"
        )
    except checks.CheckError:
        return False
    return True


def rotate_phase(run) -> None:
    """Rotate ROTATED[site] for real (nothing for another site)."""
    site = run.site
    names = ROTATED.get(site.name)
    if not names:
        return
    if any(not r.ok for r in run.results):
        run.not_run.append((f"rotation of {', '.join(names)}", "an earlier check failed"))
        return
    old = {n: _value(site, run.env.secrets, n) for n in names}
    try:
        plan = json.loads(render.kkc(site.root, "rotate", site.name, *names, "-o", "json"))
        objects = [
            o for o in yaml.safe_load_all(render.kustomize(site.root / "deploy" / site.name)) if o
        ]
    except render.RenderError as exc:
        run.record(f"rotate {' '.join(names)}", False, str(exc))
        return
    steps = [(s["action"], s["kind"], s["name"]) for s in plan["steps"]]
    # the drop-in templates name the new generation's service user
    site.secret_list = json.loads(render.kkc(site.root, "secrets", site.name, "-o", "json"))
    run.record(
        f"rotate {' '.join(names)}: kkc rotate",
        True,
        "; ".join(f"{a} {k}/{n}" for a, k, n in steps),
    )
    site.objects = objects
    run.env.configmaps = site.configmaps()  # the retire Job's script is a new ConfigMap
    run.env.secrets = new_secrets(site, run.env.secrets, names)  # the operator's part
    by_key = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    ks_password = names[1]
    ks_old = ks_password.removesuffix("_keystone_password")
    ks_new = _registered_user(by_key, f"{ks_old}-ks-register")
    started = []
    for action, kind, name in steps:
        obj = by_key[(kind, name)]
        if action in ("re-run", "retire"):
            if action == "retire":
                _both_users_work(run, ks_old, old[ks_password], ks_new, started)
            run.run_job(obj, "after rotation")
        elif action == "roll":
            tags = {f"{name}-{c['name']}" for c in obj["spec"]["template"]["spec"]["containers"]}
            run.stop([c for c in run.running if c.tag in tags])
            started += [(name, c) for c in run.start_workload(obj)]
    apis.check_wave(run, started)  # the services answer with the new values
    db_user = names[0].removesuffix("_database_password")
    new = {n: _value(site, run.env.secrets, n) for n in names}
    run.record(
        f"rotation: MariaDB user {db_user} signs in with the new password",
        _mariadb_login(db_user, new[names[0]]),
    )
    run.record(
        f"rotation: MariaDB user {db_user} is refused the old password",
        not _mariadb_login(db_user, old[names[0]]),
    )
    run.record(
        f"rotation: Keystone user {ks_new} gets a token with the new password",
        _keystone_login(run, ks_new, new[ks_password]),
    )
    run.record(
        f"rotation: Keystone user {ks_old} is gone after the retire Job (old password refused)",
        not _keystone_login(run, ks_old, old[ks_password]),
    )


def _registered_user(by_key: dict, job: str) -> str:
    """The user the ks-register Job ``job`` of the new output creates."""
    container = by_key[("Job", job)]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    return json.loads(env["KKC_REGISTRATION"])["user"]


def _both_users_work(run, old_user: str, old_password: str, new_user: str, started) -> None:
    """Between the two phases: the old user still signs in with the old password (old pods
    that have not rolled keep working), the new user with the new one, and the rolled
    services answer (as the new user)."""
    new_password = _value(run.site, run.env.secrets, f"{old_user}_keystone_password")
    run.record(
        f"rotation: between the phases Keystone user {old_user} still works (old password)",
        _keystone_login(run, old_user, old_password),
    )
    run.record(
        f"rotation: between the phases Keystone user {new_user} works (new password)",
        _keystone_login(run, new_user, new_password),
    )
    apis.check_wave(run, started)
