"""Register an OpenStack service in Keystone (idempotent).

Runs in a Job from the kolla-toolbox image (openstacksdk):
    /var/lib/kolla/venv/bin/python3 /scripts/ks-register.py

Environment:
    OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, OS_USER_DOMAIN_NAME,
    OS_PROJECT_DOMAIN_NAME, OS_REGION_NAME, OS_INTERFACE   admin credentials
    SERVICE_PASSWORD      password of the service user
    KKC_REGISTRATION      JSON: {"region", "user", "roles": [...],
                          "services": [{"type", "name", "description",
                                        "endpoints": {"internal": url, "public": url}}],
                          optional "roles_to_create": [...],
                          optional "domains": [{"name", "description",
                              "admin": user, "admin_password_env": VAR}]}

Every run converges Keystone on the spec: the project "service" and the role
"member" exist; the user exists with the current password and the roles in
project service; each service exists and each endpoint has the given URL
(changed URLs are updated in place). Passwords are never printed.
"""
import json
import os
import sys
import time

import openstack


def log(message):
    print(f"ks-register: {message}", flush=True)


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
                sys.exit(f"ks-register: error: cannot reach Keystone: {type(exc).__name__}")
            log(f"waiting for Keystone ({type(exc).__name__}, attempt {attempt})")
            time.sleep(min(5 * attempt, 20))


def ensure(finder, creator, name, **attrs):
    found = finder(name)
    if found is None:
        log(f"creating {name}")
        return creator(name=name, **attrs)
    return found


def ensure_user(conn, name, password, domain_id="default"):
    user = conn.identity.find_user(name, domain_id=domain_id)
    if user is None:
        log(f"creating user {name}")
        return conn.identity.create_user(name=name, password=password, domain_id=domain_id)
    # Always converge on the password in the Secret (rotation = update Secret, re-run).
    return conn.identity.update_user(user, password=password)


def main():
    spec = json.loads(os.environ["KKC_REGISTRATION"])
    password = os.environ["SERVICE_PASSWORD"]
    conn = connect(time.monotonic() + float(os.environ.get("KS_CONNECT_TIMEOUT", "900")))
    idn = conn.identity

    project = ensure(
        lambda n: idn.find_project(n, domain_id="default"),
        lambda **kw: idn.create_project(domain_id="default", **kw),
        "service",
        description="Service users of the OpenStack services",
    )
    for role_name in ["member", *spec.get("roles_to_create", []), *spec["roles"]]:
        ensure(idn.find_role, idn.create_role, role_name)

    user = ensure_user(conn, spec["user"], password)
    for role_name in spec["roles"]:
        role = idn.find_role(role_name)
        idn.assign_project_role_to_user(project, user, role)
        log(f"user {spec['user']} has role {role_name} in project service")

    for svc in spec["services"]:
        service = next(
            (s for s in idn.services() if s.type == svc["type"] and s.name == svc["name"]), None
        )
        if service is None:
            log(f"creating service {svc['name']} ({svc['type']})")
            service = idn.create_service(
                type=svc["type"], name=svc["name"], description=svc["description"]
            )
        existing = {
            e.interface: e
            for e in idn.endpoints(service_id=service.id, region_id=spec["region"])
        }
        for interface, url in sorted(svc["endpoints"].items()):
            endpoint = existing.get(interface)
            if endpoint is None:
                log(f"creating {interface} endpoint of {svc['name']}: {url}")
                idn.create_endpoint(
                    service_id=service.id, interface=interface, url=url, region_id=spec["region"]
                )
            elif endpoint.url != url:
                log(f"updating {interface} endpoint of {svc['name']}: {url}")
                idn.update_endpoint(endpoint, url=url)

    for dom in spec.get("domains", []):
        domain = ensure(idn.find_domain, idn.create_domain, dom["name"],
                        description=dom["description"])
        admin = ensure_user(conn, dom["admin"], os.environ[dom["admin_password_env"]],
                            domain_id=domain.id)
        idn.assign_domain_role_to_user(domain, admin, idn.find_role("admin"))
        log(f"domain {dom['name']}: user {dom['admin']} is its admin")
    log("done")


if __name__ == "__main__":
    main()
