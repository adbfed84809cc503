"""Cinder: database and schema (stage db), block-storage in Keystone (stage register),
cinder-api, cinder-scheduler and cinder-volume (stage services), online data migrations
(stage finish).

One back end per site (``services.cinder.backend``), named by
``services.cinder.backendName`` (default ``<backend>-1``, as kolla-ansible names them):

- ``rbd``: Ceph RBD. ``ceph.conf`` and the client keyring come from the Secret
  ``cinder-ceph`` (mounted at /etc/ceph); ``backend_host`` is fixed so that volumes
  keep their host when the cinder-volume pod moves to another node.
- ``lvm``: a volume group on one storage node (``services.cinder.volume.nodeSelector``),
  exported over iSCSI by the kernel target (``lioadm``) or tgtd (``tgtadm``); cinder-volume
  runs there with the host's network, /dev, /run and /lib/modules as in kolla-ansible.
  As kolla-ansible's iscsi role: with ``tgtadm``, the ``tgtd`` container runs in the
  cinder-volume pod (a native sidecar: up before cinder-volume exports its volumes); and
  the DaemonSet ``iscsid`` (stage compute) runs the iSCSI initiator on the compute nodes
  and the storage node, which share the node's /etc/iscsi (initiator name) with
  nova-compute and cinder-volume.
"""

from __future__ import annotations

from typing import Any

from ..kolla import Ini
from ..model import Site
from ..releases import RELEASES, rhel_family
from .common import (
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
    internal_url,
    iscsi_info_patch,
    keystone_internal,
    kolla_step,
    log_dir,
    openstack_ini,
    permission,
    public_url,
    service_secret,
)
from .wsgi import uwsgi_ini

API_PORT = 8776
SPEC = ServiceSpec(
    requires=("keystone", "mariadb", "rabbitmq"),
    ports=(Port("cinder-api", API_PORT, "services", public="cinder"),),
)
CATALOG_PATH = "/v3/%(project_id)s"
# tgtadm talks to tgtd over /run/tgtd (the host's /run, in both containers).
TGTADM_SHOW = ["tgtadm", "--lld", "iscsi", "--mode", "system", "--op", "show"]


def backend_name(site: Site) -> str:
    return site.get("services.cinder.backendName") or f"{site.get('services.cinder.backend')}-1"


def target_helper(site: Site) -> str:
    """kolla-ansible's default: the LIO kernel target on RHEL-family images, tgtd on
    Debian/Ubuntu ones (their cinder-volume image ships tgt, not rtslib)."""
    chosen = site.get("services.cinder.lvm.targetHelper")
    if chosen:
        return chosen
    return "lioadm" if rhel_family(site.get("openstack.distro")) else "tgtadm"


def _backend(site: Site) -> dict[str, object]:
    cinder = site.get("services.cinder")
    name = backend_name(site)
    if cinder["backend"] == "rbd":
        rbd = cinder["rbd"]
        return {
            "volume_driver": "cinder.volume.drivers.rbd.RBDDriver",
            "volume_backend_name": name,
            "backend_host": f"rbd:{rbd['pool']}",
            "rbd_pool": rbd["pool"],
            "rbd_user": rbd["user"],
            "rbd_ceph_conf": "/etc/ceph/ceph.conf",
            "rbd_secret_uuid": rbd.get("secretUuid", ""),
            "rbd_flatten_volume_from_snapshot": False,
            "rbd_max_clone_depth": 5,
            "rbd_store_chunk_size": 4,
            "rados_connect_timeout": 5,
            "report_discard_supported": True,
            "image_upload_use_cinder_backend": True,
        }
    return {
        "volume_driver": "cinder.volume.drivers.lvm.LVMVolumeDriver",
        "volume_backend_name": name,
        "volume_group": cinder["lvm"]["volumeGroup"],
        "target_helper": target_helper(site),
        "target_protocol": "iscsi",
    }


def _tgtd_sidecar() -> dict[str, Any]:
    """The tgtd container of the cinder-volume pod (tgtadm), as kolla-ansible's tgtd:
    privileged, with the pod's host network and IPC and the host's /dev, /run and
    /lib/modules. A restartable init container, so it answers before cinder-volume
    starts (and re-exports its volumes through it). kolla-ansible binds the portal to the node's API
    address; here tgtd listens on every address of the node (port 3260), the one cinder
    announces ([<backend>] target_ip_address, default my_ip) among them. /var/lib/cinder
    is cinder-volume's: the image's targets.conf includes /var/lib/cinder/volumes/*."""
    probe = {"exec": {"command": TGTADM_SHOW}, "timeoutSeconds": 10}
    return {
        "name": "tgtd",
        "image": "kolla/tgtd",
        "imagePullPolicy": "IfNotPresent",
        "restartPolicy": "Always",
        "env": [{"name": "KOLLA_CONFIG_STRATEGY", "value": "COPY_ALWAYS"}],
        "startupProbe": {**probe, "periodSeconds": 5, "failureThreshold": 60},
        "livenessProbe": {**probe, "periodSeconds": 30, "failureThreshold": 6},
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "1Gi"},
        },
        "securityContext": {
            "privileged": True,
            "allowPrivilegeEscalation": True,
            "readOnlyRootFilesystem": False,
        },
        "volumeMounts": [
            {"name": "tgtd-config", "mountPath": "/var/lib/kolla/config_files", "readOnly": True},
            {"name": "kolla-logs", "mountPath": "/var/log/kolla"},
            {"name": "cinder-state", "mountPath": "/var/lib/cinder"},
            {"name": "host-dev", "mountPath": "/dev"},
            {"name": "host-run", "mountPath": "/run", "mountPropagation": "Bidirectional"},
            {"name": "host-modules", "mountPath": "/lib/modules", "readOnly": True},
        ],
    }


def _volume_patch(site: Site) -> dict[str, Any]:
    """LVM: cinder-volume gets the node's /etc/iscsi and, with tgtadm, the tgtd sidecar."""
    patch = iscsi_info_patch("Deployment", "cinder-volume", "cinder-volume")
    if target_helper(site) == "tgtadm":
        pod = patch["spec"]["template"]["spec"]
        pod["initContainers"] = [_tgtd_sidecar()]
        pod["volumes"].append({"name": "tgtd-config", "configMap": {"name": "tgtd-kolla"}})
    return patch


def _iscsid_placement(site: Site) -> dict[str, Any]:
    """Patch of the iscsid DaemonSet: the compute nodes (if Nova is enabled) or the storage
    node, one pod per node; the tolerations of both."""
    groups = [site.get("services.cinder.volume")]
    if site.enabled("nova"):
        groups.insert(0, site.get("services.nova.compute"))
    pod: dict[str, Any] = {}
    selectors = [dict(sorted((g.get("nodeSelector") or {}).items())) for g in groups]
    if all(selectors):  # an empty nodeSelector means every node: no affinity at all
        terms = []
        for selector in selectors:
            term = {
                "matchExpressions": [
                    {"key": key, "operator": "In", "values": [value]}
                    for key, value in selector.items()
                ]
            }
            if term not in terms:
                terms.append(term)
        pod["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
            }
        }
    tolerations: list[dict[str, Any]] = []
    for group in groups:
        tolerations += [t for t in group.get("tolerations") or [] if t not in tolerations]
    if tolerations:
        pod["tolerations"] = tolerations
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "iscsid"},
        "spec": {"template": {"spec": pod}},
    }


def _ini(site: Site) -> Ini:
    return openstack_ini(
        site,
        "cinder",
        {
            "DEFAULT": {
                "enabled_backends": backend_name(site),
                "glance_catalog_info": "image:glance:internalURL",
            },
            # Volume extend/attach events to Nova, as the cinder user (roles admin, service).
            "nova": {
                "interface": "internal",
                "auth_type": "password",
                "auth_url": keystone_internal(site),
                "project_domain_id": "default",
                "user_domain_id": "default",
                "project_name": "service",
                "username": "cinder",
                "region_name": site.get("region"),
            },
            "keystone_authtoken": {"service_type": "block-storage"},
            "privsep_entrypoint": {
                "helper_command": "sudo cinder-rootwrap /etc/cinder/rootwrap.conf "
                "privsep-helper --config-file /etc/cinder/cinder.conf"
            },
            backend_name(site): _backend(site),
        },
    )


def _secrets(site: Site) -> list[SecretSpec]:
    password = '{{ index . "keystone-password" }}'
    specs = [
        service_secret(
            site,
            "cinder",
            "Cinder database, RabbitMQ and Keystone passwords and the cinder.conf drop-in",
            {"nova": {"password": password}},
        )
    ]
    if site.get("services.cinder.backend") == "rbd":
        specs.append(ceph_secret("cinder", "cinder-volume", site.get("services.cinder.rbd.user")))
    return specs


def _db_jobs(kolla: ServiceConfig) -> tuple[DbSync, DbSync]:
    """Stage db: the schema; stage finish: the online data migrations."""
    config = kolla.config
    # The cinder-api image's modes run and exit (the commands below are never run):
    # KOLLA_BOOTSTRAP `cinder-manage db sync` (the image has no KOLLA_UPGRADE), KOLLA_OSM
    # `cinder-manage db online_data_migrations`, in stage finish.
    db_sync = DbSync(
        "cinder",
        ("cinder",),
        (
            kolla_step(
                "db-sync",
                "cinder-api",
                config("cinder-db-sync-kolla", "cinder-manage db sync"),
                ("KOLLA_BOOTSTRAP", ""),
            ),
        ),
    )
    migrations = db_finish(
        "cinder",
        kolla_step(
            "online-data-migrations",
            "cinder-api",
            config("cinder-online-migrations-kolla", "cinder-manage db online_data_migrations"),
            ("KOLLA_OSM", ""),
        ),
    )
    return db_sync, migrations


def _registration(site: Site) -> Registration:
    internal = internal_url(site, "cinder-api", API_PORT, CATALOG_PATH)
    public = public_url(site, "cinder", CATALOG_PATH)
    return Registration(
        "cinder",
        (
            Endpoint("block-storage", "cinder", "OpenStack Block Storage", internal, public),
            # The legacy type, still looked up by older clients (kolla-ansible registers both).
            Endpoint("volumev3", "cinderv3", "OpenStack Block Storage", internal, public),
        ),
        roles=("admin", "service"),
    )


def cinder(site: Site) -> ServiceOutput:
    release = RELEASES[site.get("openstack.release")]
    if "cinder" not in release.uwsgi:  # every supported release runs cinder-api under uwsgi
        raise NotImplementedError(f"cinder-api without uwsgi ({release.name})")
    kolla = ServiceConfig(
        "cinder",
        (ConfigFile("cinder.conf", conf_file(site, _ini(site)), "/etc/cinder/cinder.conf"),),
        permissions=(
            permission("/var/lib/cinder", "cinder:cinder", recurse=True),
            log_dir("cinder"),
        ),
    )
    config = kolla.config
    api = kolla.uwsgi(
        "cinder-api",
        uwsgi_ini(
            site,
            "cinder",
            "cinder.wsgi.api:application",
            API_PORT,
            site.get("services.cinder.api.workers"),
        ),
    )
    scheduler = config(
        "cinder-scheduler-kolla", "cinder-scheduler --config-file /etc/cinder/cinder.conf"
    )
    volume = config("cinder-volume-kolla", "cinder-volume --config-file /etc/cinder/cinder.conf")

    db_sync, migrations = _db_jobs(kolla)
    registration = _registration(site)
    lvm = site.get("services.cinder.backend") == "lvm"
    images = ["cinder-api", "cinder-scheduler", "cinder-volume", "kolla-toolbox"]
    configs = {"services": [api, scheduler, volume]}
    workloads: list[Workload] = []
    patches: dict[str, list[dict[str, Any]]] = {}
    if lvm:
        # iscsid and tgtd: no cinder.conf, no secrets, nothing to own
        bare = ServiceConfig("cinder", drop_in=None)
        # Placed by _iscsid_placement (nodes of two components).
        workloads.append(Workload("DaemonSet", "iscsid", "iscsid", "compute", placed=False))
        configs["compute"] = [bare.config("iscsid-kolla", "iscsid -d 8 -f")]
        patches = {"services": [_volume_patch(site)], "compute": [_iscsid_placement(site)]}
        images.append("iscsid")
        if target_helper(site) == "tgtadm":
            configs["services"].append(bare.config("tgtd-kolla", "tgtd -d 1 -f"))
            images.append("tgtd")
    return ServiceOutput(
        "cinder",
        images,
        [
            Workload("Deployment", "cinder-api", "cinder-api", "services", "api", scalable=True),
            Workload(
                "Deployment",
                "cinder-scheduler",
                "cinder-scheduler",
                "services",
                "scheduler",
                scalable=True,
            ),
            # One cinder-volume per back end. LVM: on the storage node the site selects.
            Workload(
                "Deployment",
                "cinder-volume",
                "cinder-volume",
                "services",
                "volume",
                placed=not lvm,
                nodes="volume" if lvm else None,
            ),
            *workloads,
        ],
        configs,
        _secrets(site),
        db_sync=db_sync,
        db_finish=migrations,
        registration=registration,
        patches=patches,
    )
