"""Infrastructure services: MariaDB, RabbitMQ and memcached (stage infra)."""

from __future__ import annotations

from ..kolla import render_ini
from ..model import Site, mariadb_operator, rabbitmq_operator
from ..releases import rhel_family
from .common import (
    MARIADB_SERVER_OPTIONS,
    ConfigFile,
    Port,
    SecretKey,
    SecretSpec,
    ServiceConfig,
    ServiceOutput,
    ServiceSpec,
    Workload,
    header,
    log_dir,
    permission,
)
from .galera import galera
from .rabbitmq_cluster import rabbitmq_cluster

# Their clients are the services that use them (see kkc.features.network_policy).
MARIADB = ServiceSpec(ports=(Port("mariadb", 3306, "infra", reach="clients"),))
RABBITMQ = ServiceSpec(ports=(Port("rabbitmq", 5672, "infra", reach="clients"),))
MEMCACHED = ServiceSpec(ports=(Port("memcached", 11211, "infra", reach="clients"),))


def mariadb(site: Site) -> ServiceOutput:
    """MariaDB: one Kolla mariadb-server (provider kolla), or the Galera cluster of
    mariadb-operator (:func:`kkc.services.galera.galera`)."""
    if mariadb_operator(site):
        return galera(site)
    deb = not rhel_family(site.get("openstack.distro"))
    cnf = render_ini(
        {
            "client": {"default-character-set": "utf8mb4"},
            "mysql": {"default-character-set": "utf8mb4"},
            "mysqld": {
                "bind-address": "0.0.0.0",
                "port": 3306,
                "datadir": "/var/lib/mysql/",
                **MARIADB_SERVER_OPTIONS,
            },
            "mysqld_safe": {"log-error": "/var/log/kolla/mariadb/mariadb.log"},
        },
        header(site),
    )
    cfg = ServiceConfig(
        "mariadb",
        (ConfigFile("my.cnf", cnf, "/etc/mysql/my.cnf" if deb else "/etc/my.cnf"),),
        drop_in=None,
        permissions=(
            log_dir("mariadb", "mysql:mysql"),
            permission("/var/lib/mysql", "mysql:mysql", recurse=True),
        ),
        owner="mysql",
    ).config("mariadb-kolla", "/usr/bin/mariadbd-safe")
    return ServiceOutput(
        "mariadb",
        ["mariadb-server", "kolla-toolbox"],
        [Workload("StatefulSet", "mariadb", "mariadb", "infra", "server", claim="mariadb-data")],
        {"infra": [cfg]},
        [
            SecretSpec(
                "mariadb-secrets",
                "MariaDB root password (server bootstrap and database-creation Jobs)",
                (SecretKey("root-password", "MariaDB root password", source="database_password"),),
            )
        ],
    )


def rabbitmq(site: Site) -> ServiceOutput:
    """RabbitMQ: one Kolla rabbitmq (provider kolla), or the cluster of RabbitMQ's cluster
    operator (:func:`kkc.services.rabbitmq_cluster.rabbitmq_cluster`)."""
    if rabbitmq_operator(site):
        return rabbitmq_cluster(site)
    conf = ConfigFile(
        "rabbitmq.conf",
        "\n".join(
            [
                f"# {header(site)}",
                "listeners.tcp.default = 5672",
                "management.tcp.port = 15672",
                "cluster_partition_handling = pause_minority",
                "loopback_users.guest = true",
                "log.console = true",
                "log.console.level = info",
                "log.file = false",
                "",
            ]
        ),
        "/etc/rabbitmq/rabbitmq.conf",
    )
    plugins = ConfigFile(
        "enabled_plugins",
        "[rabbitmq_management,rabbitmq_prometheus].\n",
        "/etc/rabbitmq/enabled_plugins",
    )
    # The drop-in of rabbitmq-secrets: the openstack user and its password.
    cfg = ServiceConfig(
        "rabbitmq",
        (conf, plugins),
        drop_in="rabbitmq-users.conf",
        drop_in_dest="/etc/rabbitmq/conf.d/20-kkc-users.conf",
        permissions=(
            permission("/var/lib/rabbitmq", "rabbitmq:rabbitmq", recurse=True),
            log_dir("rabbitmq"),
        ),
    ).config("rabbitmq-kolla", "/usr/sbin/rabbitmq-server")
    users_conf = (
        "default_user = openstack\n"
        "default_pass = {{ .password }}\n"
        "default_vhost = /\n"
        "default_permissions.configure = .*\n"
        "default_permissions.read = .*\n"
        "default_permissions.write = .*\n"
    )
    return ServiceOutput(
        "rabbitmq",
        ["rabbitmq"],
        [Workload("StatefulSet", "rabbitmq", "rabbitmq", "infra", "server", claim="rabbitmq-data")],
        {"infra": [cfg]},
        [
            SecretSpec(
                "rabbitmq-secrets",
                "RabbitMQ user, Erlang cookie and the users drop-in",
                (
                    SecretKey(
                        "password",
                        "password of the RabbitMQ user openstack",
                        source="rabbitmq_password",
                    ),
                    SecretKey(
                        "erlang-cookie",
                        "Erlang distribution cookie",
                        source="rabbitmq_cluster_cookie",
                    ),
                    SecretKey(
                        "rabbitmq-users.conf",
                        "rabbitmq.conf drop-in with default_user/default_pass",
                        template=users_conf,
                    ),
                ),
            )
        ],
    )


def memcached(site: Site) -> ServiceOutput:
    mem = site.get("services.memcached.server.memoryMB", 256)
    cfg = ServiceConfig("memcached", drop_in=None).config(
        "memcached-kolla", f"/usr/bin/memcached -v -l 0.0.0.0 -p 11211 -c 5000 -U 0 -m {mem}"
    )
    return ServiceOutput(
        "memcached",
        ["memcached"],
        [Workload("StatefulSet", "memcached", "memcached", "infra", "server", scalable=True)],
        {"infra": [cfg]},
    )
