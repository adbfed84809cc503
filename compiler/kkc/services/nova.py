"""Nova: databases and cells (stage db), the compute service in Keystone (stage register),
the control plane (stage services), the node agents (stage compute) and the online data
migrations (stage finish).

Single-cell layout as in the upstream install guide: every control-plane container has
``[api_database] connection`` (nova_api) and ``[database] connection`` (nova, the cell1
database); cell0 (nova_cell0) is derived from the latter by ``nova-manage cell_v2
map_cell0``. nova-compute gets no database connection at all (its own drop-in).

Ceph (``services.nova.backend: rbd``, and Cinder volumes on ``rbd``): as kolla-ansible's
nova-cell role, each Ceph user the computes use is a libvirt secret (``<uuid>.xml`` in the
ConfigMap, the bare key ``<uuid>.base64`` from the Secret ``nova-ceph``) that kolla_start
copies to /etc/libvirt/secrets/ in nova-libvirt, where libvirtd loads it at start.
nova-compute reads ceph.conf and the keyring from ``nova-ceph`` at /etc/ceph. Keys only
ever come from that Secret; the UUIDs are site values (not secret).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..kolla import Ini, KollaConfig, render_ini
from ..model import Site
from ..releases import RELEASES
from .common import (
    TRANSPORT_URL,
    DbSync,
    Endpoint,
    Registration,
    SecretKey,
    SecretSpec,
    ServiceOutput,
    Workload,
    conf_file,
    database_url,
    db_finish,
    header,
    internal_url,
    iscsi_info_patch,
    keystone_internal,
    kolla_step,
    memcache_servers,
    openstack_ini,
    public_url,
    secret_drop_in,
    service_secret,
    uses_iscsi,
    uwsgi_ini,
)

API_PORT = 8774
METADATA_PORT = 8775
NOVNCPROXY_PORT = 6080
SKIP = ("KOLLA_SKIP_EXTEND_START", "")
COMPUTE_CONF = "nova-compute.conf"  # drop-in key without database connections
CEPH_CONF = "/etc/ceph/ceph.conf"
LIBVIRT_SECRETS = "/etc/libvirt/secrets"  # libvirtd's persistent secrets: <uuid>.xml/.base64
# Go template pipeline (External Secrets, sprig): the bare key of a keyring's "key = ..." line.
KEY_FROM_KEYRING = r"regexFind `key\s*=\s*\S+` | regexFind `[A-Za-z0-9+/]+=*$`"
# As kolla-ansible's nova-cell role defines it (persistent).
LIBVIRT_SECRET = """\
<secret ephemeral='no' private='no'>
  <uuid>{uuid}</uuid>
  <usage type='ceph'>
    <name>client.{user} secret</name>
  </usage>
</secret>
"""

# nova-manage cell_v2 create_cell is not idempotent (a second call with the same URLs exits
# 2, one with changed URLs adds a second "cell1"): create cell1 once, afterwards bring its
# mapping up to date with the configured transport_url and [database] connection.
CREATE_CELL = """\
#!/bin/bash
# {header}
set -euo pipefail
uuid=$(nova-manage cell_v2 list_cells | awk -F'|' '{{
    name = $2; id = $3; gsub(/ /, "", name); gsub(/ /, "", id)
    if (name == "cell1") print id
}}')
if [[ -z "$uuid" ]]; then
    echo "creating cell1"
    nova-manage cell_v2 create_cell --name cell1 --verbose
else
    echo "cell1 exists ($uuid): updating its mapping from the configuration"
    nova-manage cell_v2 update_cell --cell_uuid "$uuid"
fi
"""

# libvirtd: local UNIX socket only (nova-compute in the same node, group nova), no TCP/TLS
# listener (kolla_nova_libvirt_start passes --listen; with both listeners off it opens none).
LIBVIRTD_CONF = """\
# {header}
listen_tcp = 0
listen_tls = 0
unix_sock_group = "nova"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_level = 3
log_outputs = "3:stderr"
"""

# As kolla-ansible's nova-cell qemu.conf: guests run as nova, console logs through virtlogd.
QEMU_CONF = """\
# {header}
stdio_handler = "logd"
user = "nova"
group = "nova"
max_files = 32768
max_processes = 131072
"""


def _auth() -> dict[str, object]:
    """keystoneauth password plugin options: the nova user in project service."""
    return {
        "auth_type": "password",
        "project_domain_id": "default",
        "user_domain_id": "default",
        "project_name": "service",
        "username": "nova",
    }


def _ksa(site: Site) -> dict[str, object]:
    """Auth and adapter options of a client of another service (placement, neutron), acting
    as the nova user (admin and service roles) on the internal endpoints of the catalog."""
    return {
        "auth_url": keystone_internal(site),
        **_auth(),
        "region_name": site.get("region"),
        "valid_interfaces": "internal",
    }


def _common_sections(site: Site) -> Ini:
    """What control plane and computes share."""
    vnc_base = public_url(site, "novncproxy", "/vnc_lite.html")
    return {
        "DEFAULT": {"state_path": "/var/lib/nova"},
        "upgrade_levels": {"compute": "auto"},
        # Auth and session options only ([service_user] has no adapter options).
        "service_user": {
            "send_service_user_token": True,
            "auth_url": keystone_internal(site),
            **_auth(),
        },
        "placement": _ksa(site),
        "neutron": _ksa(site),
        "glance": {"region_name": site.get("region"), "valid_interfaces": "internal"},
        "vnc": {"enabled": True, "novncproxy_base_url": vnc_base},
    }


def _controller_ini(site: Site, nova: dict) -> Ini:
    sections = _common_sections(site)
    sections["api_database"] = {"max_retries": -1, "connection_recycle_time": 10}
    sections["keystone_authtoken"] = {
        "service_type": "compute",
        "region_name": site.get("region"),
    }
    sections["neutron"]["service_metadata_proxy"] = True
    sections["vnc"].update({"novncproxy_host": "0.0.0.0", "novncproxy_port": NOVNCPROXY_PORT})
    sections["cache"] = {
        "enabled": True,
        "backend": "oslo_cache.memcache_pool",
        "memcache_servers": memcache_servers(site),
    }
    sections["wsgi"] = {"api_paste_config": "/etc/nova/api-paste.ini"}
    sections["conductor"] = {"workers": nova["conductor"]["workers"]}
    # Hosts are mapped by the CronJob nova-discover-hosts, not by the scheduler.
    sections["scheduler"] = {
        "workers": nova["scheduler"]["workers"],
        "discover_hosts_in_cells_interval": -1,
    }
    return openstack_ini(site, "nova", sections)


def _compute_ini(site: Site, nova: dict) -> Ini:
    sections = _common_sections(site)
    sections["DEFAULT"]["compute_driver"] = "libvirt.LibvirtDriver"
    # hostNetwork: my_ip is the node's address; VNC listens there for nova-novncproxy.
    sections["vnc"].update({"server_listen": "$my_ip", "server_proxyclient_address": "$my_ip"})
    sections["libvirt"] = {
        "virt_type": nova["compute"]["virtType"],
        "connection_uri": "qemu:///system",
    }
    sections["libvirt"].update(_rbd_libvirt(site))
    ini = openstack_ini(site, "nova", sections, auth=False)
    del ini["database"]  # nova-compute has no database access
    return ini


def _rbd_libvirt(site: Site) -> dict[str, object]:
    """[libvirt] options of the computes for Ceph: ephemeral disks on RBD (backend rbd),
    and the user and libvirt secret of RBD disks (Cinder volumes too, as kolla-ansible)."""
    nova = site.get("services.nova")
    opts: dict[str, object] = {}
    if nova["backend"] == "rbd":
        opts = {
            "images_type": "rbd",
            "images_rbd_pool": nova["rbd"]["pool"],
            "images_rbd_ceph_conf": CEPH_CONF,
            "disk_cachemodes": "network=writeback",
            "hw_disk_discard": "unmap",
        }
    secrets = libvirt_secrets(site)
    if secrets:
        opts["rbd_user"] = secrets[0].user
        opts["rbd_secret_uuid"] = secrets[0].uuid
    return opts


@dataclass(frozen=True)
class LibvirtSecret:
    """A Ceph key held by libvirtd on every compute (``virsh secret-define`` equivalent)."""

    uuid: str
    user: str
    source: str  # the service whose <svc>_ceph_keyring holds client.<user>'s keyring

    @property
    def keyring(self) -> str:
        return f"ceph.client.{self.user}.keyring"

    def xml(self) -> str:
        return LIBVIRT_SECRET.format(uuid=self.uuid, user=self.user)


def libvirt_secrets(site: Site) -> list[LibvirtSecret]:
    """Nova's RBD user first (backend rbd), then Cinder's (volumes on rbd), one per user;
    the site checks (KKC155) guarantee one UUID per user."""
    cinder_rbd = site.enabled("cinder") and site.get("services.cinder.backend") == "rbd"
    cinder_user = site.get("services.cinder.rbd.user") if cinder_rbd else None
    out: list[LibvirtSecret] = []
    if site.get("services.nova.backend") == "rbd":
        rbd = site.get("services.nova.rbd")
        source = "cinder" if rbd["user"] == cinder_user else "nova"
        out.append(LibvirtSecret(rbd["secretUuid"], rbd["user"], source))
    if cinder_rbd and all(s.user != cinder_user for s in out):
        out.append(LibvirtSecret(site.get("services.cinder.rbd.secretUuid"), cinder_user, "cinder"))
    return out


def _ceph_secret(site: Site) -> SecretSpec | None:
    """nova-ceph: ceph.conf (backend rbd), the keyring of each libvirt secret's user and
    its bare key (``<uuid>.base64``, templated from the keyring)."""
    secrets = libvirt_secrets(site)
    if not secrets:
        return None
    keys = []
    if site.get("services.nova.backend") == "rbd":
        keys.append(SecretKey("ceph.conf", "ceph.conf of the cluster", source="nova_ceph_conf"))
    for sec in secrets:
        keys.append(
            SecretKey(
                sec.keyring,
                f"keyring of the Ceph user client.{sec.user}",
                source=f"{sec.source}_ceph_keyring",
            )
        )
    for sec in secrets:
        keys.append(
            SecretKey(
                f"{sec.uuid}.base64",
                f"the bare key of client.{sec.user} (libvirt secret {sec.uuid})",
                template=f'{{{{ index . "{sec.keyring}" | {KEY_FROM_KEYRING} }}}}',
            )
        )
    return SecretSpec(
        "nova-ceph",
        "Ceph client configuration of nova-compute (mounted at /etc/ceph) and the keys of "
        "the libvirt secrets of nova-libvirt",
        tuple(keys),
    )


def _secret(site: Site) -> SecretSpec:
    """nova-secrets: passwords, the control-plane drop-in nova.conf and the compute drop-in."""
    password = '{{ index . "keystone-password" }}'
    services = {
        "service_user": {"password": password},
        "placement": {"password": password},
        "neutron": {"password": password},
    }
    controller: Ini = {
        "api_database": {"connection": database_url("nova", "nova_api")},
        **{s: dict(o) for s, o in services.items()},
    }
    controller["neutron"]["metadata_proxy_shared_secret"] = '{{ index . "metadata-secret" }}'
    spec = service_secret(
        "nova",
        "Nova passwords, the metadata proxy secret and the nova.conf drop-ins "
        "(control plane: nova.conf; computes: nova-compute.conf, without databases)",
        controller,
        extra=(
            SecretKey(
                "metadata-secret",
                "shared secret of the metadata proxy (nova-metadata and neutron's "
                "metadata agent must agree)",
                source="metadata_secret",
            ),
        ),
    )
    compute: Ini = {
        "DEFAULT": {"transport_url": TRANSPORT_URL},
        **services,
    }
    key = SecretKey(
        COMPUTE_CONF,
        "oslo.config drop-in of nova-compute: [DEFAULT] transport_url, [service_user], "
        "[placement], [neutron] password",
        template=render_ini(compute, ""),
        conf_file="nova.conf",
    )
    return SecretSpec(spec.name, spec.purpose, (*spec.keys, key))


def nova(site: Site) -> ServiceOutput:
    release = RELEASES[site.get("openstack.release")]
    if "nova" not in release.uwsgi:  # every supported release runs nova-api under uwsgi
        raise NotImplementedError(f"nova-api without uwsgi ({release.name})")
    cfg = site.get("services.nova")
    controller = conf_file(site, _controller_ini(site, cfg))
    compute = conf_file(site, _compute_ini(site, cfg))

    def config(name: str, command: str, *, node: bool = False) -> KollaConfig:
        kc = KollaConfig(name, command)
        kc.add_file("nova.conf", compute if node else controller, "/etc/nova/nova.conf", "nova")
        return secret_drop_in(kc, "nova", COMPUTE_CONF if node else "")

    def log_permissions(kc: KollaConfig) -> KollaConfig:
        kc.permissions = [{"path": "/var/log/kolla/nova", "owner": "nova:nova", "recurse": True}]
        return kc

    # --- stage db: nova_api, nova, nova_cell0 and the cell mappings -----------------------
    create_cell = config("nova-create-cell-kolla", "/bin/bash /etc/nova/kkc-create-cell.sh")
    create_cell.add_file(
        "kkc-create-cell.sh",
        CREATE_CELL.format(header=header(site)),
        "/etc/nova/kkc-create-cell.sh",
        "nova",
        "0700",
    )
    db_sync = DbSync(
        "nova",
        ("nova_api", "nova", "nova_cell0"),
        (
            kolla_step(
                "api-db-sync",
                "nova-api",
                config("nova-api-db-sync-kolla", "nova-manage api_db sync"),
                SKIP,
            ),
            # cell0's URL is derived from [database] connection (nova -> nova_cell0) of the
            # drop-in: no password on the command line. Idempotent.
            kolla_step(
                "map-cell0",
                "nova-api",
                config("nova-map-cell0-kolla", "nova-manage cell_v2 map_cell0"),
                SKIP,
            ),
            kolla_step("create-cell", "nova-conductor", create_cell, SKIP),
            # Without --local_cell: the schema of every mapped cell (cell0 and cell1).
            kolla_step(
                "db-sync",
                "nova-conductor",
                config("nova-db-sync-kolla", "nova-manage db sync"),
                SKIP,
            ),
        ),
    )
    # --- stage finish: once the control plane and the computes run the new release -------
    migrations = db_finish(
        "nova",
        kolla_step(
            "online-data-migrations",
            "nova-conductor",
            config("nova-online-migrations-kolla", "nova-manage db online_data_migrations"),
            SKIP,
        ),
    )

    # --- stage services --------------------------------------------------------------------
    api = log_permissions(config("nova-api-kolla", "uwsgi /etc/nova/nova-api-uwsgi.ini"))
    api.add_file(
        "nova-api-uwsgi.ini",
        uwsgi_ini(
            site, "nova", "nova.wsgi.osapi_compute:application", API_PORT, cfg["api"]["workers"]
        ),
        "/etc/nova/nova-api-uwsgi.ini",
        "nova",
    )
    metadata = log_permissions(
        config("nova-metadata-kolla", "uwsgi /etc/nova/nova-metadata-uwsgi.ini")
    )
    metadata.add_file(
        "nova-metadata-uwsgi.ini",
        uwsgi_ini(
            site,
            "nova",
            "nova.wsgi.metadata:application",
            METADATA_PORT,
            cfg["metadata"]["workers"],
        ),
        "/etc/nova/nova-metadata-uwsgi.ini",
        "nova",
    )
    conductor = log_permissions(config("nova-conductor-kolla", "nova-conductor"))
    scheduler = log_permissions(config("nova-scheduler-kolla", "nova-scheduler"))
    novncproxy = log_permissions(config("nova-novncproxy-kolla", "nova-novncproxy"))

    # --- stage compute ---------------------------------------------------------------------
    nova_compute = config("nova-compute-kolla", "nova-compute", node=True)
    nova_compute.permissions = [
        {"path": "/var/log/kolla/nova", "owner": "nova:nova", "recurse": True},
        {"path": "/var/lib/nova", "owner": "nova:nova"},
        {"path": "/var/lib/nova/instances", "owner": "nova:nova"},
    ]
    libvirt = KollaConfig("nova-libvirt-kolla", "/usr/local/bin/kolla_nova_libvirt_start")
    libvirt.add_file(
        "libvirtd.conf",
        LIBVIRTD_CONF.format(header=header(site)),
        "/etc/libvirt/libvirtd.conf",
        "root",
    )
    libvirt.add_file(
        "qemu.conf", QEMU_CONF.format(header=header(site)), "/etc/libvirt/qemu.conf", "root"
    )
    for sec in libvirt_secrets(site):
        libvirt.add_file(f"{sec.uuid}.xml", sec.xml(), f"{LIBVIRT_SECRETS}/{sec.uuid}.xml", "root")
        libvirt.copy(
            f"{sec.uuid}.base64", f"{LIBVIRT_SECRETS}/{sec.uuid}.base64", "root", secret=True
        )
    if cfg["backend"] == "rbd":
        libvirt.copy("ceph.conf", CEPH_CONF, "root", "0644", secret=True)
    discover = config(
        "nova-discover-hosts-kolla", "nova-manage cell_v2 discover_hosts --by-service --verbose"
    )

    registration = Registration(
        "nova",
        (
            Endpoint(
                "compute",
                "nova",
                "OpenStack Compute",
                internal_url(site, "nova-api", API_PORT, "/v2.1"),
                public_url(site, "nova", "/v2.1"),
            ),
        ),
        roles=("admin", "service"),
    )

    def deployment(name: str, component: str) -> Workload:
        return Workload("Deployment", name, name, "services", component, scalable=True)

    return ServiceOutput(
        "nova",
        [
            "nova-api",
            "nova-conductor",
            "nova-scheduler",
            "nova-novncproxy",
            "nova-compute",
            "nova-libvirt",
            "kolla-toolbox",
        ],
        [
            deployment("nova-api", "api"),
            deployment("nova-metadata", "metadata"),
            deployment("nova-conductor", "conductor"),
            deployment("nova-scheduler", "scheduler"),
            deployment("nova-novncproxy", "novncproxy"),
            Workload(
                "DaemonSet",
                "nova-libvirt",
                "nova-libvirt",
                "compute",
                "libvirt",
                placed=False,
                nodes="compute",
            ),
            Workload(
                "DaemonSet",
                "nova-compute",
                "nova-compute",
                "compute",
                "compute",
                placed=False,
                nodes="compute",
            ),
            Workload(
                "CronJob", "nova-discover-hosts", "discover-hosts", "compute", "discoverHosts"
            ),
        ],
        {
            "services": [api, metadata, conductor, scheduler, novncproxy],
            "compute": [libvirt, nova_compute, discover],
        },
        [s for s in (_secret(site), _ceph_secret(site)) if s],
        db_sync=db_sync,
        db_finish=migrations,
        registration=registration,
        # Cinder LVM volumes over iSCSI: the node's initiator name, which iscsid created.
        patches=(
            {"compute": [iscsi_info_patch("DaemonSet", "nova-compute", "nova-compute")]}
            if uses_iscsi(site)
            else {}
        ),
    )
