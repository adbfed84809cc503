"""Glance: database, schema and metadata definitions (stage db), the image service in
Keystone (stage register), glance-api (stage services).

glance-api runs eventlet-style (``glance-api``, [DEFAULT] bind_host/bind_port/workers) where
the release does not list glance in ``uwsgi`` (2025.1), else under uwsgi
(``glance.wsgi.api:application``, kolla-ansible's chunked-input options for uploads).

One image store per site (``services.glance.backend``), named like its type as
kolla-ansible does, plus the read-only ``http`` store:

- ``file``: a PersistentVolumeClaim ``glance-images`` at /var/lib/glance/images
  (ReadWriteMany when glance-api has more than one replica, else ReadWriteOnce with the
  Recreate strategy so that the volume is never needed on two nodes at once);
- ``rbd``: Ceph RBD; ``ceph.conf`` and ``ceph.client.<user>.keyring`` come from the Secret
  ``glance-ceph``, mounted at /etc/ceph.

Import staging (/var/lib/glance/staging) is per pod: ``worker_self_reference_url`` (the
pod's own address, from the environment) lets another API worker hand an import to the
pod that staged the data, as glance's distributed import expects.
"""

from __future__ import annotations

from typing import Any

from ..kolla import Ini
from ..model import Site
from ..releases import RELEASES
from .common import (
    KEEP,
    ConfigFile,
    DbSync,
    Endpoint,
    Port,
    Registration,
    SecretSpec,
    ServiceConfig,
    ServiceOutput,
    ServiceSpec,
    Workload,
    ceph_secret,
    conf_file,
    db_finish,
    header,
    internal_url,
    kolla_step,
    log_dir,
    openstack_ini,
    permission,
    public_url,
    service_secret,
)
from .wsgi import uwsgi_ini

API_PORT = 9292
SPEC = ServiceSpec(
    requires=("keystone", "mariadb", "rabbitmq"),
    ports=(Port("glance-api", API_PORT, "services", public="glance"),),
)
IMAGES_CLAIM = "glance-images"
IMAGES_DIR = "/var/lib/glance/images/"


def uses_uwsgi(site: Site) -> bool:
    return "glance" in RELEASES[site.get("openstack.release")].uwsgi


def _store(site: Site) -> dict[str, Any]:
    glance = site.get("services.glance")
    if glance["backend"] == "rbd":
        rbd = glance["rbd"]
        return {
            "rbd_store_pool": rbd["pool"],
            "rbd_store_user": rbd["user"],
            "rbd_store_ceph_conf": "/etc/ceph/ceph.conf",
        }
    return {"filesystem_store_datadir": IMAGES_DIR}


def _ini(site: Site) -> Ini:
    backend = site.get("services.glance.backend")
    default: dict[str, Any] = {"enabled_backends": f"{backend}:{backend}, http:http"}
    if backend == "rbd":
        # Nova and Cinder clone RBD images copy-on-write only if they see the location.
        default["show_image_direct_url"] = True
    if not uses_uwsgi(site):
        default.update(
            {
                "bind_host": "0.0.0.0",
                "bind_port": API_PORT,
                "workers": site.get("services.glance.api.workers"),
            }
        )
    return openstack_ini(
        site,
        "glance",
        {
            "DEFAULT": default,
            "keystone_authtoken": {"service_type": "image", "region_name": site.get("region")},
            "paste_deploy": {"flavor": "keystone"},
            "glance_store": {"default_backend": backend},
            backend: _store(site),
            "os_glance_tasks_store": {"filesystem_store_datadir": "/var/lib/glance/tasks_work_dir"},
            "os_glance_staging_store": {"filesystem_store_datadir": "/var/lib/glance/staging"},
        },
    )


def _secrets(site: Site) -> list[SecretSpec]:
    specs = [
        service_secret(
            site, "glance", "Glance database, RabbitMQ and Keystone passwords and the drop-in", {}
        )
    ]
    if site.get("services.glance.backend") == "rbd":
        specs.append(ceph_secret("glance", "glance-api", site.get("services.glance.rbd.user")))
    return specs


def _file_storage(site: Site) -> tuple[dict[str, Any], dict[str, Any]]:
    """The image volume of the file store and the patch that mounts it in glance-api."""
    glance = site.get("services.glance")
    storage = glance.get("storage") or {}
    shared = glance["api"].get("replicas", 1) > 1
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteMany" if shared else "ReadWriteOnce"],
        "resources": {"requests": {"storage": storage.get("size", "50Gi")}},
    }
    if storage.get("storageClass"):
        spec["storageClassName"] = storage["storageClass"]
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": IMAGES_CLAIM,
            "annotations": dict(KEEP),
            "labels": {
                "app.kubernetes.io/name": "glance",
                "app.kubernetes.io/component": "api",
                "app.kubernetes.io/part-of": "openstack",
            },
        },
        "spec": spec,
    }
    deployment: dict[str, Any] = {
        "template": {
            "spec": {
                "volumes": [
                    {
                        "name": "glance-images",
                        "emptyDir": None,
                        "persistentVolumeClaim": {"claimName": IMAGES_CLAIM},
                    }
                ]
            }
        }
    }
    if not shared:
        # A ReadWriteOnce volume attaches to one node: the old pod goes first.
        deployment["strategy"] = {"type": "Recreate", "rollingUpdate": None}
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "glance-api"},
        "spec": deployment,
    }
    return claim, patch


# Stage db of glance's rolling upgrade (kolla-ansible's glance_enable_rolling_upgrade): on
# a database of an earlier release, expand the schema and migrate the data, which the old
# release's API pods still work with; the contract waits for stage finish. A new database
# gets the whole schema at once (`db_sync`: expand, migrate and contract of every release
# so far), as kolla-ansible's bootstrap does: expand alone would leave out what earlier
# releases' contract migrations did. Then the metadata definitions (existing ones kept).
DB_SYNC = """\
#!/bin/bash
# {header}
set -uo pipefail
if ! version=$(glance-manage db version); then
    echo "cannot read glance's schema version: retrying" >&2
    exit 1
fi
if [[ "$version" == *"not under migration control"* ]]; then
    echo "a new database: the whole schema (glance-manage db_sync)"
    glance-manage db_sync || exit 1
else
    glance-manage db expand || exit 1
    glance-manage db migrate || exit 1
fi
exec glance-manage db_load_metadefs
"""


def _db_jobs(site: Site, config: Any) -> tuple[DbSync, DbSync]:
    """Stage db: :data:`DB_SYNC`; stage finish: the contract, once every glance-api pod
    runs the new release (a no-op on a database that db_sync made). Each command says "up
    to date" and exits 0 when there is nothing to do, so every Job re-runs cleanly."""
    skip = ("KOLLA_SKIP_EXTEND_START", "")
    script = ConfigFile(
        "kkc-db-sync.sh", DB_SYNC.format(header=header(site)), "/etc/glance/kkc-db-sync.sh", "0700"
    )
    db_sync = DbSync(
        "glance",
        ("glance",),
        (
            kolla_step(
                "db-sync",
                "glance-api",
                config("glance-db-sync-kolla", "/bin/bash /etc/glance/kkc-db-sync.sh", script),
                skip,
            ),
        ),
    )
    contract = db_finish(
        "glance",
        kolla_step(
            "db-contract",
            "glance-api",
            config("glance-db-contract-kolla", "glance-manage db contract"),
            skip,
        ),
    )
    return db_sync, contract


def glance(site: Site) -> ServiceOutput:
    kolla = ServiceConfig(
        "glance",
        (
            ConfigFile(
                "glance-api.conf", conf_file(site, _ini(site)), "/etc/glance/glance-api.conf"
            ),
        ),
        permissions=(permission("/var/lib/glance", "glance:glance"), log_dir("glance")),
    )
    config = kolla.config
    if uses_uwsgi(site):
        # kolla-ansible's service-uwsgi-config for glance-api (2026.1): the HTTP router with
        # chunked input (image uploads without Content-Length), in the foreground.
        api = kolla.uwsgi(
            "glance-api",
            uwsgi_ini(
                site,
                "glance",
                "glance.wsgi.api:application",
                API_PORT,
                site.get("services.glance.api.workers"),
                chunked_input=True,
            ),
        )
    else:
        api = config("glance-api-kolla", "glance-api")

    db_sync, db_contract = _db_jobs(site, config)
    registration = Registration(
        "glance",
        (
            Endpoint(
                "image",
                "glance",
                "OpenStack Image",
                internal_url(site, "glance-api", API_PORT),
                public_url(site, "glance"),
            ),
        ),
    )
    manifests: dict[str, list[dict[str, Any]]] = {}
    patches: dict[str, list[dict[str, Any]]] = {}
    if site.get("services.glance.backend") == "file":
        claim, patch = _file_storage(site)
        manifests["services"] = [claim]
        patches["services"] = [patch]
    return ServiceOutput(
        "glance",
        ["glance-api", "kolla-toolbox"],
        [Workload("Deployment", "glance-api", "glance-api", "services", "api", scalable=True)],
        {"services": [api]},
        _secrets(site),
        db_sync=db_sync,
        db_finish=db_contract,
        registration=registration,
        manifests=manifests,
        patches=patches,
    )
