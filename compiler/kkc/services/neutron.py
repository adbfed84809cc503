"""Neutron with the ML2/OVN driver, together with the OVN and Open vSwitch it drives.

Stages: infra (OVN databases, ovn-northd: see :mod:`kkc.services.ovn`), db (schema),
register (user neutron with roles admin and service, the network endpoint :9696),
services (neutron-server; under uwsgi also neutron-rpc-server, neutron-periodic-workers
and neutron-ovn-maintenance-worker), compute (Open vSwitch, ovn-controller and the OVN
metadata agent on the nodes of services.neutron.nodeSelector).

OVN and Open vSwitch are part of neutron's output rather than services of their own:
nothing but neutron uses them, so ``services.neutron.enabled`` switches them on and their
site options live under ``services.neutron``.

eventlet vs uwsgi (releases.py, ``"neutron" in Release.uwsgi``) is decided in one place,
:func:`_server`: 2025.1 runs ``neutron-server`` (API, RPC, periodic and OVN maintenance
in one eventlet process); 2025.2 and later run the API under uwsgi and the other three
as their own Deployments (base/neutron/services/uwsgi/), as kolla-ansible does.
"""

from __future__ import annotations

from ..kolla import Ini, IniFile, KollaConfig, render_ini
from ..model import Site
from ..releases import RELEASES
from . import ovn
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
    db_finish,
    header,
    internal_url,
    keystone_internal,
    kolla_step,
    log_dir,
    openstack_ini,
    permission,
    public_url,
    service_secret,
)
from .wsgi import uwsgi_ini

PORT = 9696
SPEC = ServiceSpec(
    requires=("keystone", "mariadb", "rabbitmq"),
    ports=(
        # neutron's own Deployments (server, RPC, workers) are the OVN databases' clients
        Port("ovn-nb-db", ovn.NB_PORT, "infra", reach="service"),
        Port("ovn-sb-db", ovn.SB_PORT, "infra", reach="service"),
        Port("neutron-server", PORT, "services", public="neutron"),
    ),
)
NOVA_METADATA_PORT = 8775  # nova's nova-metadata Service
CONF = "/etc/neutron/neutron.conf"
ML2 = "/etc/neutron/plugins/ml2/ml2_conf.ini"
METADATA_INI = "/etc/neutron/neutron_ovn_metadata_agent.ini"
METADATA_DROP_IN = "neutron-ovn-metadata-agent.conf"  # key of neutron-secrets
CONFIG_FILES = f"--config-file {CONF} --config-file {ML2}"
# oslo.config reads its default config dirs (neutron.conf.d/, the drop-ins) before the
# --config-file arguments, so an option of ml2_conf.ini would win over a drop-in; an
# explicit --config-dir after them is read last (found by make e2e: the OVN addresses).
CONFIG_DIR = "--config-dir /etc/neutron/neutron.conf.d"


def _neutron_conf(site: Site, cfg: dict, uwsgi: bool) -> IniFile:
    default: dict = {
        "core_plugin": "ml2",
        "service_plugins": "ovn-router",
        "rpc_workers": cfg["rpcServer"]["workers"] if uwsgi else cfg["server"]["workers"],
    }
    if not uwsgi:
        default.update({"bind_host": "0.0.0.0", "bind_port": PORT})
        default["api_workers"] = cfg["server"]["workers"]
    return conf_file(
        site,
        openstack_ini(
            site,
            "neutron",
            {
                "DEFAULT": default,
                "keystone_authtoken": {
                    "service_type": "network",
                    "region_name": site.get("region"),
                },
                # Port events to nova (os-server-external-events): neutron's own user,
                # which has the service role nova's policy asks for (kolla-ansible uses
                # the nova user; this keeps nova's password out of neutron-secrets).
                "nova": {
                    "auth_url": keystone_internal(site),
                    "auth_type": "password",
                    "project_domain_id": "default",
                    "user_domain_id": "default",
                    "project_name": "service",
                    "username": "neutron",
                    "region_name": site.get("region"),
                    "endpoint_type": "internal",
                },
            },
        ),
    )


def _ml2_conf(site: Site) -> IniFile:
    physnets = [p for p, _ in ovn.bridge_mappings(site)]
    ini: Ini = {
        "ml2": {
            # Changing type_drivers after bootstrap can lead to database inconsistencies.
            "type_drivers": "flat,vlan,geneve",
            RELEASES[site.get("openstack.release")].ml2_network_types: "geneve",
            "mechanism_drivers": "ovn",
            "extension_drivers": "port_security",
            "overlay_ip_version": 4,
        },
        "ml2_type_geneve": {"vni_ranges": "1:65536", "max_header_size": 38},
        "ml2_type_flat": {"flat_networks": ",".join(physnets)},
        "ml2_type_vlan": {"network_vlan_ranges": ",".join(physnets)},
        "securitygroup": {"enable_security_group": True},
        "ovn": {
            "ovn_nb_connection": ovn.nb_connection(site),
            "ovn_sb_connection": ovn.sb_connection(site),
            "ovn_metadata_enabled": True,
            "enable_distributed_floating_ip": False,
            "ovn_l3_scheduler": "leastloaded",
        },
    }
    return conf_file(site, ini)


def _metadata_ini(site: Site, cfg: dict) -> IniFile:
    return conf_file(
        site,
        {
            "DEFAULT": {
                "nova_metadata_host": f"nova-metadata.{site.get('namespace')}.svc",
                "nova_metadata_port": NOVA_METADATA_PORT,
                "nova_metadata_protocol": "http",
                "metadata_proxy_socket": "/var/lib/neutron/kolla/metadata_proxy",
                "metadata_workers": cfg["metadataAgent"]["workers"],
            },
            "ovs": {"ovsdb_connection": f"tcp:127.0.0.1:{ovn.OVSDB_PORT}"},
            "ovn": {
                "ovn_nb_connection": ovn.nb_connection(site),
                "ovn_sb_connection": ovn.sb_connection(site),
                "ovn_metadata_enabled": True,
            },
        },
    )


def _server(
    site: Site, cfg: dict, kolla: ServiceConfig
) -> tuple[list[Workload], list[KollaConfig], list[str]]:
    """The services-stage workloads: the one place eventlet and uwsgi releases differ.
    Returns (workloads, configs, extra base directories)."""
    release = RELEASES[site.get("openstack.release")]
    server = Workload(
        "Deployment", "neutron-server", "neutron-server", "services", "server", scalable=True
    )
    if "neutron" not in release.uwsgi:
        api = kolla.config("neutron-server-kolla", f"neutron-server {CONFIG_FILES} {CONFIG_DIR}")
        return [server], [_ovn_address(api)], []
    api = kolla.uwsgi(
        "neutron-server",
        uwsgi_ini(site, "neutron", "neutron.wsgi.api:application", PORT, cfg["server"]["workers"]),
    )
    # Without --config-file these read neutron.conf and plugins/ml2/ml2_conf.ini
    # (neutron.server._get_config_files), as kolla-ansible runs them.
    workers = [
        ("neutron-rpc-server", "rpcServer", True),
        ("neutron-periodic-workers", "periodicWorkers", False),
        ("neutron-ovn-maintenance-worker", "ovnMaintenanceWorker", False),
    ]
    return (
        [server]
        + [
            Workload("Deployment", name, name, "services", comp, scalable=scalable)
            for name, comp, scalable in workers
        ],
        [_ovn_address(api)]
        + [_ovn_address(kolla.config(f"{name}-kolla", name)) for name, _, _ in workers],
        ["neutron/services/uwsgi"],
    )


# The drop-in the init container ovn-address of the base writes: the [ovn] connections
# with the Services' addresses, because python-ovs resolves no host name without the
# unbound module, which the Kolla images do not have (found by make e2e).
OVN_ADDRESS_DIR = "/var/lib/kolla/ovn-address"
OVN_ADDRESS_DEST = "/etc/neutron/neutron.conf.d/60-kkc-ovn-address.conf"


def _ovn_address(cfg: KollaConfig) -> KollaConfig:
    """``cfg`` also copies the ovn-address drop-in (after the secret drop-in: 60 > 50)."""
    cfg.copy("ovn-address.conf", OVN_ADDRESS_DEST, "neutron", source_dir=OVN_ADDRESS_DIR)
    return cfg


def _secret(site: Site) -> SecretSpec:
    """neutron-secrets: passwords, the metadata proxy secret, the drop-ins of neutron.conf
    and of the OVN metadata agent."""
    return service_secret(
        site,
        "neutron",
        "Neutron passwords, the metadata proxy secret and the neutron.conf drop-ins",
        # Port events to nova authenticate as neutron (see [nova] in neutron.conf).
        {"nova": {"password": '{{ index . "keystone-password" }}'}},
        extra=(
            # The same kolla password nova's nova-secrets/metadata-secret comes from,
            # so both ends of the metadata proxy agree without sharing a Secret.
            SecretKey(
                "metadata-secret",
                "shared secret of the metadata proxy (nova-metadata and neutron's OVN "
                "metadata agent must agree)",
                source="metadata_secret",
            ),
            SecretKey(
                METADATA_DROP_IN,
                "oslo.config drop-in of the OVN metadata agent: "
                "[DEFAULT] metadata_proxy_shared_secret",
                template=render_ini(
                    {
                        "DEFAULT": {
                            "metadata_proxy_shared_secret": '{{ index . "metadata-secret" }}'
                        }
                    },
                    "",
                ),
                conf_file="neutron_ovn_metadata_agent.ini",
            ),
        ),
    )


def _metadata_agent(site: Site, cfg: dict, conf: IniFile) -> KollaConfig:
    """The OVN metadata agent: neutron.conf, its own ini and drop-in, its state directory."""
    agent = ServiceConfig(
        "neutron",
        (
            ConfigFile("neutron.conf", conf, CONF),
            ConfigFile("neutron_ovn_metadata_agent.ini", _metadata_ini(site, cfg), METADATA_INI),
        ),
        drop_in=METADATA_DROP_IN,
        permissions=(
            log_dir("neutron"),
            permission("/var/lib/neutron/kolla", "neutron:neutron", recurse=True),
        ),
    ).config(
        "neutron-ovn-metadata-agent-kolla",
        f"neutron-ovn-metadata-agent --config-file {CONF} --config-file {METADATA_INI} "
        + CONFIG_DIR,
    )
    return _ovn_address(agent)


# Stage db of neutron's rolling upgrade (kolla-ansible's neutron_enable_rolling_upgrade): on a
# database of an earlier release, the expand migrations, which the old release's
# neutron-server still works with; the contract waits for stage finish, once every
# neutron-server runs the new release. A new database gets both branches at once (`upgrade
# heads`), as kolla-ansible's bootstrap does: the new code needs what the contract
# migrations of earlier releases did (expand alone: "Unknown column" on the first POST).
# `current` prints each applied head's 12-hex revision; none on a new database.
DB_SYNC = """\
#!/bin/bash
# {header}
set -uo pipefail
manage="neutron-db-manage {config_files}"
if ! current=$($manage current); then
    echo "cannot read neutron's schema version: retrying" >&2
    exit 1
fi
if grep -Eq '^[0-9a-f]{{12}}( |$)' <<<"$current"; then
    exec $manage upgrade --expand
fi
echo "a new database: both branches (upgrade heads)"
exec $manage upgrade heads
"""


def _db_jobs(site: Site, kolla: ServiceConfig) -> tuple[DbSync, DbSync]:
    """Stage db: :data:`DB_SYNC`; stage finish: the contract migrations (kolla-ansible
    stops the old servers for them; here every server already runs the new release, which
    no longer reads what they drop). Each is a no-op once done."""
    manage = f"neutron-db-manage {CONFIG_FILES} upgrade"
    skip = ("KOLLA_SKIP_EXTEND_START", "")
    script = ConfigFile(
        "kkc-db-sync.sh",
        DB_SYNC.format(config_files=CONFIG_FILES, header=header(site)),
        "/etc/neutron/kkc-db-sync.sh",
        "0700",
    )
    db_sync = DbSync(
        "neutron",
        ("neutron",),
        (
            kolla_step(
                "db-sync",
                "neutron-server",
                kolla.config(
                    "neutron-db-sync-kolla", "/bin/bash /etc/neutron/kkc-db-sync.sh", script
                ),
                skip,
            ),
        ),
    )
    db_contract = db_finish(
        "neutron",
        kolla_step(
            "db-contract",
            "neutron-server",
            kolla.config("neutron-db-contract-kolla", f"{manage} --contract"),
            skip,
        ),
    )
    return db_sync, db_contract


def neutron(site: Site) -> ServiceOutput:
    cfg = site.get("services.neutron")
    release = RELEASES[site.get("openstack.release")]
    uwsgi = "neutron" in release.uwsgi
    conf = _neutron_conf(site, cfg, uwsgi)
    kolla = ServiceConfig(
        "neutron",
        (ConfigFile("neutron.conf", conf, CONF), ConfigFile("ml2_conf.ini", _ml2_conf(site), ML2)),
        permissions=(log_dir("neutron"),),
    )

    db_sync, db_contract = _db_jobs(site, kolla)
    registration = Registration(
        "neutron",
        (
            Endpoint(
                "network",
                "neutron",
                "OpenStack Networking",
                internal_url(site, "neutron-server", PORT),
                public_url(site, "neutron"),
            ),
        ),
        roles=("admin", "service"),
    )

    server_workloads, server_configs, extra = _server(site, cfg, kolla)

    metadata = _metadata_agent(site, cfg, conf)

    secret = _secret(site)

    ovn_infra, ovn_infra_configs = ovn.infra(site)
    ovn_compute, ovn_compute_configs = ovn.compute(site)
    node = {"stage": "compute", "placed": False, "nodes": ""}
    return ServiceOutput(
        "neutron",
        ["neutron-server", "neutron-metadata-agent", *ovn.OVN_IMAGES, *ovn.OVS_IMAGES],
        [
            *ovn_infra,
            *server_workloads,
            *ovn_compute,
            Workload(
                "DaemonSet",
                "neutron-ovn-metadata-agent",
                "neutron-ovn-metadata-agent",
                component="metadataAgent",
                **node,
            ),
        ],
        {
            "infra": ovn_infra_configs,
            "services": server_configs,
            "compute": [*ovn_compute_configs, metadata],
        },
        [secret],
        db_sync=db_sync,
        db_finish=db_contract,
        registration=registration,
        extra_bases={"services": extra} if extra else {},
        patches={"infra": ovn.infra_patches(site)},
        manifests={"infra": ovn.member_services(site)},
    )
