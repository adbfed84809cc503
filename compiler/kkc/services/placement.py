"""Placement: database and schema (stage db), the placement service in Keystone (stage
register), placement-api under uwsgi on port 8780 (stage services; every supported
release runs it under uwsgi), online data migrations (stage finish).

Placement keeps its database in [placement_database] and uses no message queue: the
drop-in holds that connection and the Keystone password only.
"""

from __future__ import annotations

from ..kolla import Ini
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
    internal_url,
    kolla_step,
    log_dir,
    openstack_ini,
    public_url,
    service_secret,
)
from .wsgi import uwsgi_ini

API_PORT = 8780
SPEC = ServiceSpec(
    requires=("keystone", "mariadb"),
    ports=(Port("placement-api", API_PORT, "services", public="placement"),),
)


def _ini(site: Site) -> Ini:
    ini = openstack_ini(
        site,
        "placement",
        {
            "DEFAULT": {"state_path": "/var/lib/placement"},
            "placement_database": {"max_retries": -1, "connection_recycle_time": 10},
            "keystone_authtoken": {
                "service_type": "placement",
                "region_name": site.get("region"),
            },
        },
    )
    # No RabbitMQ, no notifications, and its database options live in [placement_database].
    for section in (
        "database",
        "oslo_messaging_rabbit",
        "oslo_messaging_notifications",
        "oslo_concurrency",
    ):
        ini.pop(section, None)
    return ini


def _secret(site: Site) -> SecretSpec:
    """placement-secrets: no RabbitMQ; the connection is in [placement_database]."""
    return service_secret(
        site,
        "placement",
        "Placement database and Keystone passwords and the placement.conf drop-in",
        {"placement_database": {"connection": database_url(site, "placement", "placement")}},
        database=False,
        rabbitmq=False,
        extra=(
            SecretKey(
                "database-password",
                "password of the MariaDB user placement",
                source="placement_database_password",
            ),
        ),
    )


def placement(site: Site) -> ServiceOutput:
    release = RELEASES[site.get("openstack.release")]
    if "placement" not in release.uwsgi:  # every supported release runs it under uwsgi
        raise NotImplementedError(f"placement-api without uwsgi ({release.name})")
    kolla = ServiceConfig(
        "placement",
        (
            ConfigFile(
                "placement.conf", conf_file(site, _ini(site)), "/etc/placement/placement.conf"
            ),
        ),
        permissions=(log_dir("placement", "placement:kolla"),),
    )
    config = kolla.config
    api = kolla.uwsgi(
        "placement-api",
        uwsgi_ini(
            site,
            "placement",
            "placement.wsgi.api:application",
            API_PORT,
            site.get("services.placement.api.workers"),
        ),
    )
    # The placement-api image's modes run and exit (the commands below are never run):
    # KOLLA_UPGRADE `placement-manage db sync` only (KOLLA_BOOTSTRAP would add the online
    # data migrations under the old API pods), KOLLA_OSM `placement-manage db
    # online_data_migrations`, in stage finish.
    db_sync = DbSync(
        "placement",
        ("placement",),
        (
            kolla_step(
                "db-sync",
                "placement-api",
                config("placement-db-sync-kolla", "placement-manage db sync"),
                ("KOLLA_UPGRADE", ""),
            ),
        ),
    )
    migrations = db_finish(
        "placement",
        kolla_step(
            "online-data-migrations",
            "placement-api",
            config(
                "placement-online-migrations-kolla",
                "placement-manage db online_data_migrations",
            ),
            ("KOLLA_OSM", ""),
        ),
    )
    registration = Registration(
        "placement",
        (
            Endpoint(
                "placement",
                "placement",
                "OpenStack Placement",
                internal_url(site, "placement-api", API_PORT),
                public_url(site, "placement"),
            ),
        ),
    )
    secret = _secret(site)
    return ServiceOutput(
        "placement",
        ["placement-api", "kolla-toolbox"],
        [
            Workload(
                "Deployment", "placement-api", "placement-api", "services", "api", scalable=True
            )
        ],
        {"services": [api]},
        [secret],
        db_sync=db_sync,
        db_finish=migrations,
        registration=registration,
    )
