"""Infrastructure services: MariaDB, RabbitMQ and memcached (stage infra), and the Jobs
that apply a rotated MariaDB root or RabbitMQ password to the running servers (stage db,
rendered only while secrets.rotation names that password)."""

from __future__ import annotations

from typing import Any

from ..kolla import render_ini
from ..model import Site, mariadb_operator, rabbitmq_operator
from ..releases import rhel_family
from .common import (
    MARIADB_SERVER_OPTIONS,
    PREVIOUS,
    RABBITMQ_PASSWORD_JOB,
    ROOT_PASSWORD_JOB,
    TOOLBOX_RESOURCES,
    TOOLBOX_SECURITY,
    ConfigFile,
    Port,
    SecretKey,
    SecretSpec,
    ServiceConfig,
    ServiceOutput,
    ServiceSpec,
    Workload,
    db_host,
    header,
    job_object,
    kolla_rabbitmq,
    log_dir,
    permission,
    rotation_generation,
)
from .galera import galera
from .ovn import CLUSTER_DOMAIN
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
    keys = [SecretKey("root-password", "MariaDB root password", source="database_password")]
    out = ServiceOutput(
        "mariadb",
        ["mariadb-server", "kolla-toolbox"],
        [Workload("StatefulSet", "mariadb", "mariadb", "infra", "server", claim="mariadb-data")],
        {"infra": [cfg]},
    )
    if rotation_generation(site, "database_password"):
        keys.append(
            SecretKey(
                "root-password-previous",
                "the MariaDB root password before its rotation (the Job "
                "mariadb-root-password signs in with it to set the new one)",
                source=f"database_password{PREVIOUS}",
            )
        )
        out.manifests["db"] = [_root_password_job(site)]
        out.extra_bases["db"] = ["common/root-password"]
    out.secrets.append(
        SecretSpec(
            "mariadb-secrets",
            "MariaDB root password (server bootstrap and database-creation Jobs)",
            tuple(keys),
        )
    )
    return out


def _secret_env(var: str, secret: str, key: str, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": var, "valueFrom": {"secretKeyRef": ref}}


def _root_password_job(site: Site) -> dict[str, Any]:
    """``mariadb-root-password`` (stage db): the new root password for every root account,
    signed in with the previous one (a re-run signs in with the new one and finds it
    applied). The MariaDB server is not restarted: it reads the password only to
    initialise an empty data directory."""
    env = [
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        {"name": "DB_HOST", "value": db_host(site)},
        _secret_env("NEW_ROOT_PASSWORD", "mariadb-secrets", "root-password"),
        _secret_env(
            "PREVIOUS_ROOT_PASSWORD", "mariadb-secrets", "root-password-previous", optional=True
        ),
    ]
    container = {
        "name": "root-password",
        "image": "kolla/kolla-toolbox",
        "imagePullPolicy": "IfNotPresent",
        "command": ["/var/lib/kolla/venv/bin/python3", "/scripts/mariadb-root.py"],
        "env": env,
        "resources": TOOLBOX_RESOURCES,
        "securityContext": TOOLBOX_SECURITY,
        "volumeMounts": [
            {"name": "scripts", "mountPath": "/scripts", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    volumes = [
        {"name": "scripts", "configMap": {"name": "kkc-mariadb-root"}},
        {"name": "tmp", "emptyDir": {}},
    ]
    return job_object(
        site,
        "mariadb",
        ROOT_PASSWORD_JOB,
        "mariadb-root-password",
        [container],
        volumes,
        doc="sets the rotated MariaDB root password, signed in with the previous one",
    )


# rabbitmqctl against a running node: the Erlang cookie is the credential (no old
# password needed); the password goes through standard input, never the command line.
_RABBITMQ_SCRIPT = """\
set -eu
umask 077
printf '%s' "$RABBITMQ_ERLANG_COOKIE" > "$HOME/.erlang.cookie"
pw() { printf '%s' "$RABBITMQ_PASSWORD"; }
for node in $RABBITMQ_NODES; do
  ctl="rabbitmqctl -q -n rabbit@$node"
  if pw | $ctl change_password openstack && pw | $ctl authenticate_user openstack >/dev/null
  then
    echo "rabbitmq-password: the user openstack has the new password (through rabbit@$node)"
    exit 0
  fi
  echo "rabbitmq-password: rabbit@$node did not take it; trying the next node" >&2
done
exit 1
"""


def _rabbitmq_password_job(site: Site) -> dict[str, Any]:
    """``rabbitmq-password`` (stage db): ``rabbitmqctl change_password openstack`` against
    the running cluster, after the Secret refresh and before the consumers roll. Users
    live in the cluster's metadata store, so any one node takes it. The node names
    (rabbit@rabbitmq-<i>) resolve through the headless Service's DNS domain."""
    replicas = site.get("services.rabbitmq.server.replicas", 1)
    nodes = " ".join(f"rabbitmq-{i}" for i in range(replicas))
    env = [
        {"name": "HOME", "value": "/var/lib/rabbitmq"},
        {"name": "RABBITMQ_NODES", "value": nodes},
        _secret_env("RABBITMQ_PASSWORD", "rabbitmq-secrets", "password"),
        _secret_env("RABBITMQ_ERLANG_COOKIE", "rabbitmq-secrets", "erlang-cookie"),
    ]
    container = {
        "name": "password",
        "image": "kolla/rabbitmq",
        "imagePullPolicy": "IfNotPresent",
        "command": ["bash", "-c", _RABBITMQ_SCRIPT],
        "env": env,
        "resources": {
            "requests": {"cpu": "50m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "512Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": RABBITMQ_UID,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "home", "mountPath": "/var/lib/rabbitmq"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    volumes = [{"name": "home", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]
    job = job_object(
        site,
        "rabbitmq",
        RABBITMQ_PASSWORD_JOB,
        "rabbitmq-password",
        [container],
        volumes,
        doc="rabbitmqctl change_password openstack on the running cluster",
    )
    domain = f"rabbitmq-headless.{site.get('namespace')}.svc.{CLUSTER_DOMAIN}"
    job["spec"]["template"]["spec"]["dnsConfig"] = {"searches": [domain]}
    return job


RABBITMQ_UID = 42439  # the rabbitmq user of the Kolla image (the StatefulSet's fsGroup)


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
    rotated = kolla_rabbitmq(site) and rotation_generation(site, "rabbitmq_password")
    job = _rabbitmq_password_job(site) if rotated else None
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
        manifests={"db": [job]} if job else {},
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
