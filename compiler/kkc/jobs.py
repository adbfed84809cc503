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
from .services.common import DbSync, Registration, Step, db_host, keystone_internal

TOOLBOX_UID = 42401  # ansible user of kolla-toolbox
# Argo CD deletes and re-creates a Job whose spec changed; so does Flux (force).
JOB_REPLACE = {
    "argocd.argoproj.io/sync-options": "Force=true,Replace=true",
    "kustomize.toolkit.fluxcd.io/force": "enabled",
}
_KOLLA_SECURITY = {
    # kolla_start: sudo kolla_set_configs (sudo audits: AUDIT_WRITE, as Docker grants)
    "allowPrivilegeEscalation": True,
    "readOnlyRootFilesystem": False,  # kolla_set_configs writes /etc and /run_command
    "capabilities": {
        "drop": ["ALL"],
        "add": ["AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"],
    },
}
_TOOLBOX_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "runAsUser": TOOLBOX_UID,
    "capabilities": {"drop": ["ALL"]},
}
_STEP_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}
_TOOLBOX_RESOURCES = {
    "requests": {"cpu": "50m", "memory": "64Mi"},
    "limits": {"cpu": "500m", "memory": "256Mi"},
}


def _labels(service: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": service,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "openstack",
    }


def _secret_env(var: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _env(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in pairs]


def control_plane_placement(site: Site) -> dict[str, Any]:
    """nodeSelector and tolerations of the site's control-plane pods."""
    pod: dict[str, Any] = {}
    placement = site.get("placement", {}) or {}
    if placement.get("nodeSelector"):
        pod["nodeSelector"] = dict(sorted(placement["nodeSelector"].items()))
    if placement.get("tolerations"):
        pod["tolerations"] = placement["tolerations"]
    return pod


def _job(
    site: Site,
    service: str,
    component: str,
    name: str,
    containers: list[dict],
    volumes: list[dict],
    init: list[dict] | None = None,
    doc: str = "",
) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "restartPolicy": "OnFailure",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        **control_plane_placement(site),
    }
    if init:
        pod["initContainers"] = init
    pod["containers"] = containers
    pod["volumes"] = volumes
    meta: dict[str, Any] = {"name": name, "labels": _labels(service, component)}
    if doc:
        meta["annotations"] = {"kkc.openstack.org/description": doc}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": 10,
            "template": {"metadata": {"labels": _labels(service, component)}, "spec": pod},
        },
    }


def _toolbox(name: str, script: str, env: list[dict]) -> dict[str, Any]:
    return {
        "name": name,
        "image": "kolla/kolla-toolbox",
        "imagePullPolicy": "IfNotPresent",
        "command": ["/var/lib/kolla/venv/bin/python3", f"/scripts/{script}"],
        "env": [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}, *env],
        "resources": _TOOLBOX_RESOURCES,
        "securityContext": _TOOLBOX_SECURITY,
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
        "securityContext": _KOLLA_SECURITY,
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
    return _job(
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


def registration_job(site: Site, spec: Registration) -> dict[str, Any]:
    doc = {
        "region": site.get("region"),
        "user": spec.user or spec.service,
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
        {"name": "OS_AUTH_URL", "value": keystone_internal(site)},
        {"name": "OS_USERNAME", "value": "admin"},
        {"name": "OS_PROJECT_NAME", "value": "admin"},
        {"name": "OS_USER_DOMAIN_NAME", "value": "Default"},
        {"name": "OS_PROJECT_DOMAIN_NAME", "value": "Default"},
        {"name": "OS_REGION_NAME", "value": site.get("region")},
        {"name": "OS_INTERFACE", "value": "internal"},
        _secret_env("OS_PASSWORD", "keystone-secrets", "admin-password"),
        _secret_env("SERVICE_PASSWORD", f"{spec.service}-secrets", "keystone-password"),
        {"name": "KKC_REGISTRATION", "value": json.dumps(doc, sort_keys=True)},
    ]
    env += [_secret_env(*e) for e in spec.secret_env]
    return _job(
        site,
        spec.service,
        "ks-register",
        spec.name,
        [_toolbox("ks-register", "ks-register.py", env)],
        _toolbox_volumes("kkc-ks-register"),
        doc=f"Keystone user {doc['user']}, roles {', '.join(spec.roles)}; services: "
        + (", ".join(e.type for e in spec.endpoints) or "none"),
    )
