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

from dataclasses import dataclass, replace

from ..kolla import Ini, KollaConfig, render_ini
from ..model import Site
from ..releases import RELEASES
from .common import (
    ConfigFile,
    DbSync,
    Endpoint,
    Port,
    Registration,
    SecretKey,
    SecretSpec,
    ServiceConfig,
    ServiceOutput,
    ServiceSpec,
    Workload,
    conf_file,
    database_url,
    db_finish,
    header,
    internal_url,
    iscsi_info_patch,
    keystone_internal,
    kolla_step,
    log_dir,
    memcache_servers,
    openstack_ini,
    permission,
    public_url,
    service_secret,
    transport_url,
    uses_iscsi,
    with_service_user,
)
from .wsgi import uwsgi_ini

API_PORT = 8774
METADATA_PORT = 8775
NOVNCPROXY_PORT = 6080
SPEC = ServiceSpec(
    requires=("keystone", "mariadb", "rabbitmq", "placement", "glance", "neutron"),
    ports=(
        Port("nova-api", API_PORT, "services", public="nova"),
        # only the OVN metadata agents (hostNetwork) ask nova-metadata
        Port("nova-metadata", METADATA_PORT, "services", reach="nodes"),
        Port("nova-novncproxy", NOVNCPROXY_PORT, "services", public="novncproxy"),
    ),
)
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

# kolla-ansible's nova upgrade check (roles/nova/tasks/upgrade.yml): `nova-status upgrade
# check` with the new release's code, before its schema migrations; exit 0 (success) and 1
# (warnings) pass, anything else fails the step, so nova's migrations, the roll of its
# control plane (stage services) and of the computes wait. It needs a running cloud to
# check: placement's API and the compute records. On a deployment that is not complete
# (no nova_api schema yet, or no compute host mapped by nova-discover-hosts) there is
# nothing to upgrade and the check is skipped, so day one, and a retry of this Job before
# placement is up, never wait on an API that a later stage starts.
UPGRADE_CHECK = """\
#!/bin/bash
# {header}
set -uo pipefail
if ! version=$(nova-manage api_db version | tail -n 1); then
    echo "nova_api is not reachable: retrying" >&2
    exit 1
fi
if [[ "$version" == "None" ]]; then
    echo "nova_api has no schema yet (a first deployment): upgrade check skipped"
    exit 0
fi
if ! hosts=$(nova-manage cell_v2 list_hosts); then
    echo "cannot list the compute hosts: retrying" >&2
    exit 1
fi
if (( $(grep -c '^|' <<<"$hosts") <= 1 )); then
    echo "no compute host is mapped yet (the deployment is not complete): upgrade check skipped"
    exit 0
fi
nova-status upgrade check
rc=$?
if (( rc > 1 )); then
    echo "nova-status upgrade check failed (exit $rc): nova's upgrade waits" >&2
    exit "$rc"
fi
exit 0
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
        "api_database": {"connection": database_url(site, "nova", "nova_api")},
        **{s: dict(o) for s, o in services.items()},
    }
    controller["neutron"]["metadata_proxy_shared_secret"] = '{{ index . "metadata-secret" }}'
    spec = service_secret(
        site,
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
    compute: Ini = with_service_user(
        site, "nova", {"DEFAULT": {"transport_url": transport_url(site, "nova")}, **services}
    )
    key = SecretKey(
        COMPUTE_CONF,
        "oslo.config drop-in of nova-compute: [DEFAULT] transport_url, [service_user], "
        "[placement], [neutron] password",
        template=render_ini(compute, ""),
        conf_file="nova.conf",
    )
    return SecretSpec(spec.name, spec.purpose, (*spec.keys, key))


def _db_jobs(site: Site, kolla: ServiceConfig) -> tuple[DbSync, DbSync]:
    """Stage db: the upgrade check, then nova_api, nova, nova_cell0 and the cell mappings;
    stage finish: the online data migrations, once the control plane and the computes run
    the new release."""
    config = kolla.config
    create_cell = config(
        "nova-create-cell-kolla",
        "/bin/bash /etc/nova/kkc-create-cell.sh",
        ConfigFile(
            "kkc-create-cell.sh",
            CREATE_CELL.format(header=header(site)),
            "/etc/nova/kkc-create-cell.sh",
            "0700",
        ),
    )
    upgrade_check = config(
        "nova-upgrade-check-kolla",
        "/bin/bash /etc/nova/kkc-upgrade-check.sh",
        ConfigFile(
            "kkc-upgrade-check.sh",
            UPGRADE_CHECK.format(header=header(site)),
            "/etc/nova/kkc-upgrade-check.sh",
            "0700",
        ),
    )
    db_sync = DbSync(
        "nova",
        ("nova_api", "nova", "nova_cell0"),
        (
            # first, before any migration of the new release (UPGRADE_CHECK)
            kolla_step("upgrade-check", "nova-api", upgrade_check, SKIP),
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
    migrations = db_finish(
        "nova",
        kolla_step(
            "online-data-migrations",
            "nova-conductor",
            config("nova-online-migrations-kolla", "nova-manage db online_data_migrations"),
            SKIP,
        ),
    )
    return db_sync, migrations


def _control_plane(site: Site, cfg: dict, kolla: ServiceConfig) -> list[KollaConfig]:
    """Stage services: the APIs under uwsgi, conductor, scheduler and the VNC proxy."""
    apis = [
        ("nova-api", "nova.wsgi.osapi_compute:application", API_PORT, cfg["api"]["workers"]),
        (
            "nova-metadata",
            "nova.wsgi.metadata:application",
            METADATA_PORT,
            cfg["metadata"]["workers"],
        ),
    ]
    return [
        *(
            kolla.uwsgi(name, uwsgi_ini(site, "nova", module, port, workers))
            for name, module, port, workers in apis
        ),
        kolla.config("nova-conductor-kolla", "nova-conductor"),
        kolla.config("nova-scheduler-kolla", "nova-scheduler"),
        kolla.config("nova-novncproxy-kolla", "nova-novncproxy"),
    ]


def _libvirt(site: Site) -> KollaConfig:
    """nova-libvirt: libvirtd and qemu configuration, the libvirt secrets of the Ceph users."""
    libvirt = ServiceConfig(
        "nova",
        (
            ConfigFile(
                "libvirtd.conf",
                LIBVIRTD_CONF.format(header=header(site)),
                "/etc/libvirt/libvirtd.conf",
            ),
            ConfigFile(
                "qemu.conf", QEMU_CONF.format(header=header(site)), "/etc/libvirt/qemu.conf"
            ),
        ),
        drop_in=None,
        owner="root",
    ).config("nova-libvirt-kolla", "/usr/local/bin/kolla_nova_libvirt_start")
    for sec in libvirt_secrets(site):
        libvirt.add_file(f"{sec.uuid}.xml", sec.xml(), f"{LIBVIRT_SECRETS}/{sec.uuid}.xml", "root")
        libvirt.copy(
            f"{sec.uuid}.base64", f"{LIBVIRT_SECRETS}/{sec.uuid}.base64", "root", secret=True
        )
    if site.get("services.nova.backend") == "rbd":
        libvirt.copy("ceph.conf", CEPH_CONF, "root", "0644", secret=True)
    return libvirt


def _workloads() -> list[Workload]:
    def deployment(name: str, component: str) -> Workload:
        return Workload("Deployment", name, name, "services", component, scalable=True)

    def node_agent(name: str, component: str) -> Workload:
        return Workload(
            "DaemonSet", name, name, "compute", component, placed=False, nodes="compute"
        )

    return [
        deployment("nova-api", "api"),
        deployment("nova-metadata", "metadata"),
        deployment("nova-conductor", "conductor"),
        deployment("nova-scheduler", "scheduler"),
        deployment("nova-novncproxy", "novncproxy"),
        node_agent("nova-libvirt", "libvirt"),
        node_agent("nova-compute", "compute"),
        Workload("CronJob", "nova-discover-hosts", "discover-hosts", "compute", "discoverHosts"),
    ]


def nova(site: Site) -> ServiceOutput:
    release = RELEASES[site.get("openstack.release")]
    if "nova" not in release.uwsgi:  # every supported release runs nova-api under uwsgi
        raise NotImplementedError(f"nova-api without uwsgi ({release.name})")
    cfg = site.get("services.nova")
    nova_conf = "/etc/nova/nova.conf"
    # the Jobs' containers; the control plane's, with their log directory
    jobs = ServiceConfig(
        "nova", (ConfigFile("nova.conf", conf_file(site, _controller_ini(site, cfg)), nova_conf),)
    )
    control = replace(jobs, permissions=(log_dir("nova"),))
    # nova-compute: its own nova.conf and drop-in, without database connections
    compute = ServiceConfig(
        "nova",
        (ConfigFile("nova.conf", conf_file(site, _compute_ini(site, cfg)), nova_conf),),
        drop_in=COMPUTE_CONF,
        permissions=(
            log_dir("nova"),
            permission("/var/lib/nova", "nova:nova"),
            permission("/var/lib/nova/instances", "nova:nova"),
        ),
    )
    db_sync, migrations = _db_jobs(site, jobs)
    discover = jobs.config(
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
        _workloads(),
        {
            "services": _control_plane(site, cfg, control),
            "compute": [
                _libvirt(site),
                compute.config("nova-compute-kolla", "nova-compute"),
                discover,
            ],
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
