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

from ..kolla import Ini, KollaConfig, render_ini
from ..model import Site
from ..releases import RELEASES
from .common import (
    KEEP,
    DbSync,
    Endpoint,
    Registration,
    SecretSpec,
    ServiceOutput,
    Workload,
    ceph_secret,
    conf_file,
    header,
    internal_url,
    kolla_step,
    openstack_ini,
    public_url,
    secret_drop_in,
    service_secret,
)

API_PORT = 9292
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


def _uwsgi_ini(site: Site) -> str:
    """kolla-ansible's service-uwsgi-config for glance-api (2026.1): the HTTP router with
    chunked input (image uploads without Content-Length), in the foreground."""
    return render_ini(
        {
            "uwsgi": {
                "add-header": "Connection: close",
                "buffer-size": 65535,
                "chunked-input-limit": 64 * 1024 * 1024,
                "die-on-term": True,
                "enable-threads": True,
                "exit-on-reload": False,
                "hook-master-start": "unix_signal:15 gracefully_kill_them_all",
                "http": f"0.0.0.0:{API_PORT}",
                "http-auto-chunked": True,
                "http-chunked-input": True,
                "http-raw-body": True,
                "lazy-apps": True,
                "master": True,
                "module": "glance.wsgi.api:application",
                "need-app": True,
                "processes": site.get("services.glance.api.workers"),
                "socket-timeout": 30,
                "thunder-lock": True,
                "uid": "glance",
                "gid": "glance",
                "worker-reload-mercy": 80,
            }
        },
        header(site),
    )


def _secrets(site: Site) -> list[SecretSpec]:
    specs = [
        service_secret(
            "glance", "Glance database, RabbitMQ and Keystone passwords and the drop-in", {}
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


def glance(site: Site) -> ServiceOutput:
    conf = conf_file(site, _ini(site))

    def config(name: str, command: str) -> KollaConfig:
        cfg = KollaConfig(name, command)
        cfg.add_file("glance-api.conf", conf, "/etc/glance/glance-api.conf", "glance")
        secret_drop_in(cfg, "glance")
        cfg.permissions = [
            {"path": "/var/lib/glance", "owner": "glance:glance"},
            {"path": "/var/log/kolla/glance", "owner": "glance:glance", "recurse": True},
        ]
        return cfg

    if uses_uwsgi(site):
        api = config("glance-api-kolla", "uwsgi /etc/glance/glance-api-uwsgi.ini")
        api.add_file(
            "glance-api-uwsgi.ini",
            _uwsgi_ini(site),
            "/etc/glance/glance-api-uwsgi.ini",
            "glance",
        )
    else:
        api = config("glance-api-kolla", "glance-api")

    # The glance-api image's KOLLA_BOOTSTRAP mode runs `glance-manage db_sync` and
    # `glance-manage db_load_metadefs`, then exits.
    db_sync = DbSync(
        "glance",
        ("glance",),
        (
            kolla_step(
                "db-sync",
                "glance-api",
                config("glance-db-sync-kolla", "glance-manage db_sync"),
                ("KOLLA_BOOTSTRAP", ""),
            ),
        ),
    )
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
        registration=registration,
        manifests=manifests,
        patches=patches,
    )
