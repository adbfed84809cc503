"""The standard bring-up Jobs, rendered from one template for every service.

``<svc>-db-sync`` (stage db): kolla-toolbox creates the databases and the service's
MariaDB user, then each step runs in a Kolla image through kolla_start, in order (init
containers, the last step as the main container). ``<svc>-db-finish`` (stage finish, after
every workload has rolled): the same without the database creation, for the contract and
online data migration steps of an upgrade. ``<svc>-ks-register`` (stage
register): kolla-toolbox creates the service user, its role assignments, the service
and its endpoints in Keystone.

Job specs are immutable in Kubernetes: a changed Job (a new image on upgrade, a new
config) is replaced, not patched: see :data:`JOB_REPLACE`, applied to every Job of a stage.
"""

from __future__ import annotations

import json
from typing import Any

from .kolla import CONFIG_DIR, SECRET_DIR
from .model import Site
from .services.common import (
    KOLLA_SECURITY,
    RETIRES,
    TOOLBOX_RESOURCES,
    TOOLBOX_SECURITY,
    DbSync,
    Registration,
    Step,
    db_host,
    job_object,
    keystone_internal,
    previous_service_users,
    service_user,
)

# Argo CD deletes and re-creates a Job whose spec changed; so does Flux (force).
JOB_REPLACE = {
    "argocd.argoproj.io/sync-options": "Force=true,Replace=true",
    "kustomize.toolkit.fluxcd.io/force": "enabled",
}
_STEP_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}


def _secret_env(var: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _env(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in pairs]


def _toolbox(name: str, script: str, env: list[dict]) -> dict[str, Any]:
    return {
        "name": name,
        "image": "kolla/kolla-toolbox",
        "imagePullPolicy": "IfNotPresent",
        "command": ["/var/lib/kolla/venv/bin/python3", f"/scripts/{script}"],
        "env": [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}, *env],
        "resources": TOOLBOX_RESOURCES,
        "securityContext": TOOLBOX_SECURITY,
        "volumeMounts": [
            {"name": "scripts", "mountPath": "/scripts", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def _toolbox_volumes(configmap: str) -> list[dict[str, Any]]:
    return [
        {"name": "scripts", "configMap": {"name": configmap}},
        {"name": "tmp", "emptyDir": {}},
    ]


def _step(step: Step) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    config_vol = f"{step.name}-config"
    container = {
        "name": step.name,
        "image": f"kolla/{step.image}",
        "imagePullPolicy": "IfNotPresent",
        "env": _env([("KOLLA_CONFIG_STRATEGY", "COPY_ALWAYS"), *step.env])
        + [_secret_env(*e) for e in step.secret_env],
        "resources": _STEP_RESOURCES,
        "securityContext": KOLLA_SECURITY,
        "volumeMounts": [
            {"name": config_vol, "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "kolla-secrets", "mountPath": SECRET_DIR, "readOnly": True},
            {"name": "kolla-logs", "mountPath": "/var/log/kolla"},
        ],
    }
    volumes = [{"name": config_vol, "configMap": {"name": step.config.name}}]
    for volume, secret, path in step.secret_mounts:
        container["volumeMounts"].append({"name": volume, "mountPath": path, "readOnly": True})
        volumes.append({"name": volume, "secret": {"secretName": secret, "defaultMode": 0o440}})
    return container, volumes


def db_sync_job(site: Site, spec: DbSync) -> dict[str, Any]:
    """``<svc>-db-sync`` or ``<svc>-db-finish``: the database creation container first
    when the spec names databases, then the steps."""
    secret = f"{spec.service}-secrets"
    init, volumes = [], []
    if spec.databases:
        init.append(
            _toolbox(
                "db-init",
                "db-init.py",
                [
                    {"name": "DB_HOST", "value": db_host(site)},
                    {"name": "DB_NAME", "value": ",".join(spec.databases)},
                    {"name": "DB_USER", "value": spec.user or spec.service},
                    _secret_env("DB_ROOT_PASSWORD", "mariadb-secrets", "root-password"),
                    _secret_env("DB_PASSWORD", secret, "database-password"),
                ],
            )
        )
        volumes += _toolbox_volumes("kkc-db-init")
    containers = []
    for step in spec.steps:
        container, vols = _step(step)
        containers.append(container)
        volumes += vols
    volumes += [
        {"name": "kolla-secrets", "secret": {"secretName": secret, "defaultMode": 0o440}},
        {"name": "kolla-logs", "emptyDir": {}},
    ]
    steps = ", ".join(s.name for s in spec.steps)
    return job_object(
        site,
        spec.service,
        spec.job,
        spec.name,
        containers[-1:],
        volumes,
        init=[*init, *containers[:-1]],
        doc=f"creates databases {', '.join(spec.databases)}, then: {steps}"
        if spec.databases
        else f"once every pod runs the new images: {steps}",
    )


def _admin_env(site: Site) -> list[dict[str, Any]]:
    """The admin's credentials of a Job that calls Keystone (openstacksdk's OS_* names)."""
    return [
        {"name": "OS_AUTH_URL", "value": keystone_internal(site)},
        {"name": "OS_USERNAME", "value": "admin"},
        {"name": "OS_PROJECT_NAME", "value": "admin"},
        {"name": "OS_USER_DOMAIN_NAME", "value": "Default"},
        {"name": "OS_PROJECT_DOMAIN_NAME", "value": "Default"},
        {"name": "OS_REGION_NAME", "value": site.get("region")},
        {"name": "OS_INTERFACE", "value": "internal"},
        _secret_env("OS_PASSWORD", "keystone-secrets", "admin-password"),
    ]


def registration_job(site: Site, spec: Registration) -> dict[str, Any]:
    doc = {
        "region": site.get("region"),
        "user": spec.user or service_user(site, spec.service),
        "roles": list(spec.roles),
        "services": [
            {
                "type": e.type,
                "name": e.name,
                "description": e.description,
                "endpoints": {"internal": e.internal, "public": e.public},
            }
            for e in spec.endpoints
        ],
        **dict(spec.extra),
    }
    env = [
        *_admin_env(site),
        _secret_env("SERVICE_PASSWORD", f"{spec.service}-secrets", "keystone-password"),
        {"name": "KKC_REGISTRATION", "value": json.dumps(doc, sort_keys=True)},
    ]
    env += [_secret_env(*e) for e in spec.secret_env]
    return job_object(
        site,
        spec.service,
        "ks-register",
        spec.name,
        [_toolbox("ks-register", "ks-register.py", env)],
        _toolbox_volumes("kkc-ks-register"),
        doc=f"Keystone user {doc['user']}, roles {', '.join(spec.roles)}; services: "
        + (", ".join(e.type for e in spec.endpoints) or "none"),
    )


def retire_job(site: Site, spec: Registration) -> dict[str, Any] | None:
    """``<svc>-ks-retire`` (stage finish, once every consumer has rolled): the second phase
    of a service user's rotation, which deletes the users of the earlier generations
    (None: the service's user was never rotated, or rotates in one phase). The list of
    users changes with each generation, so the Job is replaced and runs again."""
    retired = previous_service_users(site, spec.service)
    if not retired:
        return None
    user = service_user(site, spec.service)
    doc = {"user": user, "retire": retired}
    env = [*_admin_env(site), {"name": "KKC_RETIRE", "value": json.dumps(doc, sort_keys=True)}]
    job = job_object(
        site,
        spec.service,
        "ks-retire",
        f"{spec.service}-ks-retire",
        [_toolbox("ks-retire", "ks-retire.py", env)],
        _toolbox_volumes("kkc-ks-retire"),
        doc=f"deletes the Keystone users {', '.join(retired)} once every consumer uses {user}",
    )
    job["metadata"]["annotations"][RETIRES] = f"{spec.service}_keystone_password"
    return job
