"""Retire the Keystone users of a service's earlier rotation generations (idempotent).

The second phase of a two-phase service user rotation (docs/secrets.md): generation g of
<svc>_keystone_password is a new user <svc>-g<g>, which <svc>-ks-register created and
every consumer of the service switched to in their roll; this Job runs after the rolls
(stage finish) and deletes the users of generations 0 .. g-1, so their passwords stop
working.

Runs in a Job from the kolla-toolbox image (openstacksdk):
    /var/lib/kolla/venv/bin/python3 /scripts/ks-retire.py

Environment:
    OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, OS_USER_DOMAIN_NAME,
    OS_PROJECT_DOMAIN_NAME, OS_REGION_NAME, OS_INTERFACE   admin credentials
    KKC_RETIRE            JSON: {"user": the current user, "retire": [earlier users]}

Nothing is deleted unless the current user exists and has a role in project service
(an old user is never retired before its successor can work). A user already gone is
skipped, so a re-run converges. Passwords are never read.
"""
import json
import os
import sys
import time

import openstack


def log(message):
    print(f"ks-retire: {message}", flush=True)


def connect(deadline):
    attempt = 0
    while True:
        attempt += 1
        try:
            conn = openstack.connect(cloud=None)  # OS_* environment
            conn.identity.get_token()
            return conn
        except Exception as exc:  # keystone not up yet, or a transient error
            if time.monotonic() >= deadline:
                sys.exit(f"ks-retire: error: cannot reach Keystone: {type(exc).__name__}")
            log(f"waiting for Keystone ({type(exc).__name__}, attempt {attempt})")
            time.sleep(min(5 * attempt, 20))


def main():
    spec = json.loads(os.environ["KKC_RETIRE"])
    conn = connect(time.monotonic() + float(os.environ.get("KS_CONNECT_TIMEOUT", "900")))
    idn = conn.identity
    current = idn.find_user(spec["user"], domain_id="default")
    if current is None:
        sys.exit(f"ks-retire: error: user {spec['user']} does not exist; "
                 "not retiring its predecessors (has its ks-register Job run?)")
    project = idn.find_project("service", domain_id="default")
    roles = list(conn.identity.role_assignments(user_id=current.id,
                                                 scope_project_id=project.id)) if project else []
    if not roles:
        sys.exit(f"ks-retire: error: user {spec['user']} has no role in project service; "
                 "not retiring its predecessors")
    for name in spec["retire"]:
        if name == spec["user"]:
            continue
        user = idn.find_user(name, domain_id="default")
        if user is None:
            log(f"user {name} is already gone")
            continue
        idn.delete_user(user)
        log(f"deleted user {name} (its successor {spec['user']} is in use)")
    log("done")


if __name__ == "__main__":
    main()
