"""MariaDB of provider mariadb-operator (``services.mariadb.provider: mariadb-operator``): a
Galera cluster that mariadb-operator runs from one ``MariaDB`` resource (stage infra), with
a scheduled ``Backup``.

The operator creates what kolla's base/mariadb/ holds as static YAML: the StatefulSet
``mariadb``, the Services ``mariadb`` (every member), ``mariadb-primary`` (the current
primary, where kkc points every client: :func:`kkc.services.common.db_host`),
``mariadb-secondary`` and ``mariadb-internal`` (headless, for the Galera peers), and the
PodDisruptionBudget of ``spec.podDisruptionBudget``. It runs the official MariaDB image
(``services.mariadb.image``; it supports no other, so not Kolla's mariadb-server) and its
own Galera agent and init containers (the operator's image, of the operator's release).

The root password is the key the kolla provider reads, ``mariadb-secrets``/``root-password``
(from the secret store), so the database Jobs run unchanged: they create each service's
databases and user as root, on the primary. Database, User and Grant resources of the
operator are not rendered: see docs/bases.md for why.
"""

from __future__ import annotations

from typing import Any

from ..kolla import render_ini
from ..model import Site, mariadb_replicas
from .common import (
    GALERA_BACKUP,
    GALERA_POD_LABELS,
    MARIADB_SERVER_OPTIONS,
    SecretKey,
    SecretSpec,
    ServiceOutput,
    header,
    zone_spread,
)

API = "k8s.mariadb.com/v1alpha1"
NAME = "mariadb"  # the MariaDB resource, and so the operator's StatefulSet and Services
BACKUP = GALERA_BACKUP  # the Backup resource (and the operator's CronJob of it)
BACKUP_S3_SECRET = "mariadb-backup-s3"
# the operator release whose CRDs kkc embeds (commit 8970edf8368c, the CRDs of v26.6.0)
OPERATOR = "mariadb-operator"
OPERATOR_RELEASE = "26.6.0"
# The labels of the operator's MariaDB pods (instance: the MariaDB's name), and the ones kkc
# adds (spec.podMetadata) so that they carry the labels of kolla's MariaDB pods.
POD_LABELS = GALERA_POD_LABELS
KKC_POD_LABELS = {
    "app.kubernetes.io/component": "server",
    "app.kubernetes.io/part-of": "openstack",
}
BACKUP_POD_LABELS = {
    "app.kubernetes.io/name": BACKUP,
    "app.kubernetes.io/component": "backup",
    "app.kubernetes.io/part-of": "openstack",
}


def _my_cnf(site: Site) -> str:
    """The server options of kolla's my.cnf, plus what Galera requires of InnoDB; the
    operator adds the wsrep options itself."""
    return render_ini(
        {
            "mariadb": {
                "bind-address": "*",
                "default_storage_engine": "InnoDB",
                "binlog_format": "row",
                "innodb_autoinc_lock_mode": 2,
                **MARIADB_SERVER_OPTIONS,
            }
        },
        header(site),
    )


def _placement(site: Site) -> dict[str, Any]:
    """The control-plane nodeSelector and tolerations, and with ``ha.enabled`` the zone
    spread; members are always on distinct nodes (the operator's antiAffinityEnabled)."""
    out: dict[str, Any] = {"affinity": {"antiAffinityEnabled": True}}
    placement = site.get("placement", {}) or {}
    if placement.get("nodeSelector"):
        out["nodeSelector"] = dict(sorted(placement["nodeSelector"].items()))
    if placement.get("tolerations"):
        out["tolerations"] = placement["tolerations"]
    spread = zone_spread(site, {"matchLabels": dict(POD_LABELS)})
    if spread:
        out["topologySpreadConstraints"] = spread
    return out


def mariadb_resource(site: Site) -> dict[str, Any]:
    """The MariaDB resource: Galera of ``services.mariadb.server.replicas`` members."""
    server = site.get("services.mariadb.server", {}) or {}
    storage = server.get("storage", {}) or {}
    volumes: dict[str, Any] = {"size": storage.get("size", "10Gi")}
    if storage.get("storageClass"):
        volumes["storageClassName"] = storage["storageClass"]
    volumes |= {"resizeInUseVolumes": True, "waitForVolumeResize": True}
    spec: dict[str, Any] = {
        "image": site.get("services.mariadb.image"),
        "imagePullPolicy": "IfNotPresent",
        "replicas": mariadb_replicas(site),
        "port": 3306,
        "rootPasswordSecretKeyRef": {"name": "mariadb-secrets", "key": "root-password"},
        "storage": volumes,
        "myCnf": _my_cnf(site),
        "galera": {
            "enabled": True,
            "sst": "mariabackup",
            "primary": {"podIndex": 0, "autoFailover": True},
            "recovery": {"enabled": True},
        },
        "service": {"type": "ClusterIP"},
        "primaryService": {"type": "ClusterIP"},
        "podDisruptionBudget": {"maxUnavailable": 1},
        # the operator's own upgrade does not roll the cluster (data plane: agent, init)
        "updateStrategy": {"type": "ReplicasFirstPrimaryLast", "autoUpdateDataPlane": False},
        "podMetadata": {"labels": dict(KKC_POD_LABELS)},
        **_placement(site),
    }
    if server.get("resources"):
        spec["resources"] = server["resources"]
    return {
        "apiVersion": API,
        "kind": "MariaDB",
        "metadata": {"name": NAME, "labels": {**POD_LABELS, **KKC_POD_LABELS}},
        "spec": spec,
    }


def _backup_storage(site: Site, storage: dict[str, Any]) -> dict[str, Any]:
    if "s3" in storage:
        s3 = storage["s3"]
        out: dict[str, Any] = {"bucket": s3["bucket"], "endpoint": s3["endpoint"]}
        if s3.get("region"):
            out["region"] = s3["region"]
        out["prefix"] = s3.get("prefix") or f"{site.name}/mariadb"
        out["accessKeyIdSecretKeyRef"] = {"name": BACKUP_S3_SECRET, "key": "access-key-id"}
        out["secretAccessKeySecretKeyRef"] = {
            "name": BACKUP_S3_SECRET,
            "key": "secret-access-key",
        }
        out["tls"] = {"enabled": bool(s3.get("tls", True))}
        return {"s3": out}
    pvc = storage["persistentVolumeClaim"]
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": pvc.get("size", "20Gi")}},
    }
    if pvc.get("storageClass"):
        claim["storageClassName"] = pvc["storageClass"]
    return {"persistentVolumeClaim": claim}


def backup_resource(site: Site) -> dict[str, Any] | None:
    """The scheduled logical Backup of every database (services.mariadb.backup), or None."""
    backup = site.get("services.mariadb.backup") or {}
    if not backup.get("enabled") or not backup.get("storage"):
        return None
    spec: dict[str, Any] = {
        "mariaDbRef": {"name": NAME, "waitForIt": True},
        "schedule": {"cron": backup["schedule"], "suspend": False},
        "maxRetention": backup["maxRetention"],
        "compression": backup["compression"],
        "storage": _backup_storage(site, backup["storage"]),
        "podMetadata": {"labels": dict(BACKUP_POD_LABELS)},
    }
    placement = _placement(site)
    for key in ("nodeSelector", "tolerations"):
        if key in placement:
            spec[key] = placement[key]
    return {"apiVersion": API, "kind": "Backup", "metadata": {"name": BACKUP}, "spec": spec}


def _secrets(site: Site) -> list[SecretSpec]:
    out = [
        SecretSpec(
            "mariadb-secrets",
            "MariaDB root password (mariadb-operator's MariaDB and the database-creation Jobs)",
            (SecretKey("root-password", "MariaDB root password", source="database_password"),),
        )
    ]
    storage = site.get("services.mariadb.backup.storage") or {}
    if site.get("services.mariadb.backup.enabled") and "s3" in storage:
        out.append(
            SecretSpec(
                BACKUP_S3_SECRET,
                "S3 credentials of mariadb-operator's scheduled MariaDB backups",
                (
                    SecretKey(
                        "access-key-id",
                        "S3 access key id of the backup bucket",
                        source="mariadb_backup_s3_access_key_id",
                    ),
                    SecretKey(
                        "secret-access-key",
                        "S3 secret access key of the backup bucket",
                        source="mariadb_backup_s3_secret_access_key",
                    ),
                ),
            )
        )
    return out


def galera(site: Site) -> ServiceOutput:
    """The output of ``services.mariadb`` with provider mariadb-operator: no base, the
    MariaDB and Backup resources in stage infra; kolla-toolbox for the database Jobs."""
    objects = [mariadb_resource(site)]
    backup = backup_resource(site)
    if backup is not None:
        objects.append(backup)
    return ServiceOutput(
        "mariadb", ["kolla-toolbox"], [], {}, _secrets(site), manifests={"infra": objects}
    )
