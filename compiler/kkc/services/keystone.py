"""Keystone: keys, schema expand and bootstrap (stage db), the API (stage identity),
the schema contract (stage finish)."""

from __future__ import annotations

import math

from ..kolla import KollaConfig
from ..releases import RELEASES, rhel_family
from ..site import Site
from .common import (
    DbSync,
    SecretKey,
    SecretSpec,
    ServiceOutput,
    Workload,
    conf_file,
    db_finish,
    header,
    keystone_internal,
    kolla_step,
    memcache_servers,
    public_url,
    secret_drop_in,
    service_secret,
    uwsgi_ini,
)

EXPIRED_WINDOW = 172800  # [token] allow_expired_window default


def _apache_vhost(site: Site, workers: int) -> str:
    return "\n".join(
        [
            f"# {header(site)}",
            "Listen 0.0.0.0:5000",
            "ServerSignature Off",
            "ServerTokens Prod",
            "TraceEnable off",
            "TimeOut 60",
            "KeepAliveTimeout 60",
            "ErrorLog /dev/stderr",
            "",
            "<VirtualHost *:5000>",
            f"    WSGIDaemonProcess keystone-public processes={workers} threads=1 "
            "user=keystone group=keystone display-name=keystone-public",
            "    WSGIProcessGroup keystone-public",
            "    WSGIScriptAlias / /var/lib/kolla/venv/bin/keystone-wsgi-public",
            "    WSGIApplicationGroup %{GLOBAL}",
            "    WSGIPassAuthorization On",
            '    ErrorLogFormat "%{cu}t %M"',
            "    ErrorLog /dev/stderr",
            '    CustomLog /dev/stdout "%h %l %u %t \\"%r\\" %>s %b %D"',
            "</VirtualHost>",
            "",
        ]
    )


def keystone(site: Site) -> ServiceOutput:
    release = RELEASES[site.get("openstack.release")]
    ks = site.get("services.keystone")
    workers = ks["api"]["workers"]
    expiry = ks["tokenExpiration"]
    rotation = ks["fernetRotationHours"] * 3600
    internal = keystone_internal(site)
    conf = conf_file(
        site,
        {
            "DEFAULT": {"use_stderr": True, "debug": False},
            "database": {"max_retries": -1, "connection_recycle_time": 10},
            "token": {"provider": "fernet", "expiration": expiry},
            "fernet_tokens": {
                "key_repository": "/etc/keystone/fernet-keys",
                "max_active_keys": math.ceil((expiry + EXPIRED_WINDOW) / rotation) + 2,
            },
            "fernet_receipts": {"key_repository": "/etc/keystone/fernet-keys"},
            "credential": {"key_repository": "/etc/keystone/credential-keys"},
            "cache": {
                "enabled": True,
                "backend": "oslo_cache.memcache_pool",
                "memcache_servers": memcache_servers(site),
            },
            "oslo_messaging_notifications": {"driver": "noop"},
            "oslo_middleware": {"enable_proxy_headers_parsing": True},
        },
    )

    def config(name: str, command: str, *, secrets: bool = True) -> KollaConfig:
        cfg = KollaConfig(name, command)
        cfg.add_file("keystone.conf", conf, "/etc/keystone/keystone.conf", "keystone")
        return secret_drop_in(cfg, "keystone") if secrets else cfg

    if "keystone" in release.uwsgi:
        api = config("keystone-api-kolla", "uwsgi /etc/keystone/keystone-api-uwsgi.ini")
        api.add_file(
            "keystone-api-uwsgi.ini",
            uwsgi_ini(site, "keystone", "keystone.wsgi.api:application", 5000, workers),
            "/etc/keystone/keystone-api-uwsgi.ini",
            "keystone",
        )
    else:
        # Apache in the foreground: the image's extend_start.sh cleans stale run files and
        # appends -DFOREGROUND. (kolla-ansible's keystone-startup.sh is not in the image;
        # the wait for fernet key 0 is the kubelet's: the key Secret volume is required.)
        rhel = rhel_family(site.get("openstack.distro"))
        api = config("keystone-api-kolla", "/usr/sbin/httpd" if rhel else "/usr/sbin/apache2")
        apache_dir = "/etc/httpd/conf.d" if rhel else "/etc/apache2/conf-enabled"
        api.add_file(
            "wsgi-keystone.conf",
            _apache_vhost(site, workers),
            f"{apache_dir}/wsgi-keystone.conf",
            "keystone",
        )
    api.permissions = [
        {"path": "/var/log/kolla/keystone", "owner": "keystone:keystone", "recurse": True}
    ]

    bootstrap = " ".join(
        [
            "keystone-manage bootstrap",
            "--bootstrap-username admin",
            "--bootstrap-project-name admin",
            "--bootstrap-role-name admin",
            "--bootstrap-service-name keystone",
            f"--bootstrap-region-id {site.get('region')}",
            f"--bootstrap-admin-url {internal}",
            f"--bootstrap-internal-url {internal}",
            f"--bootstrap-public-url {public_url(site, 'keystone')}",
        ]
    )
    # The keystone image's extend_start.sh prepares Apache and appends -DFOREGROUND to
    # any command: skipped for keystone-manage bootstrap and the key script.
    skip = ("KOLLA_SKIP_EXTEND_START", "")
    # Rolling upgrade as kolla-ansible's: the image's KOLLA_UPGRADE mode runs
    # `keystone-manage db_sync --expand` then `--migrate` and exits (the command below is
    # never run), which the old release's API pods still work with; on an empty database
    # it creates the schema as far as the expand branch. KOLLA_FINISH_UPGRADE runs
    # `db_sync --contract` in stage finish, once no pod runs the old release. A plain
    # `db_sync` (KOLLA_BOOTSTRAP) would contract here, under the old API pods.
    db_sync = DbSync(
        "keystone",
        ("keystone",),
        (
            kolla_step(
                "db-sync",
                "keystone",
                config("keystone-db-sync-kolla", "keystone-manage db_sync --expand"),
                ("KOLLA_UPGRADE", ""),
            ),
            # keystone-manage bootstrap loads the fernet token provider, which exits
            # ("/etc/keystone/fernet-keys does not exist") without a key repository; the
            # image has none, so the keys that keystone-keys-setup stores are mounted
            # (the kubelet starts the container once that Secret exists).
            kolla_step(
                "bootstrap",
                "keystone",
                config("keystone-bootstrap-kolla", bootstrap),
                skip,
                secret_env=(("OS_BOOTSTRAP_PASSWORD", "keystone-secrets", "admin-password"),),
                secret_mounts=(
                    ("fernet-keys", "keystone-fernet-keys", "/etc/keystone/fernet-keys"),
                ),
            ),
        ),
    )
    db_contract = db_finish(
        "keystone",
        kolla_step(
            "db-contract",
            "keystone",
            config("keystone-db-contract-kolla", "keystone-manage db_sync --contract"),
            ("KOLLA_FINISH_UPGRADE", ""),
        ),
    )
    keys = config(
        "keystone-keys-kolla",
        "/var/lib/kolla/venv/bin/python3 /var/lib/kkc/scripts/keystone-keys.py",
        secrets=False,
    )
    secret = service_secret(
        "keystone",
        "Keystone database password, admin password and the keystone.conf drop-in",
        {},
        rabbitmq=False,
        keystone=False,
        extra=(
            SecretKey(
                "admin-password",
                "password of the OpenStack admin user",
                source="keystone_admin_password",
            ),
        ),
    )
    return ServiceOutput(
        "keystone",
        ["keystone", "kolla-toolbox"],
        [
            Workload("Job", "keystone-keys-setup", "keys", "db"),
            Workload("CronJob", "keystone-fernet-rotate", "keys", "db"),
            Workload(
                "Deployment", "keystone-api", "keystone-api", "identity", "api", scalable=True
            ),
        ],
        {"db": [keys], "identity": [api]},
        [
            secret,
            SecretSpec(
                "keystone-fernet-keys",
                "Fernet token keys (files 0..N)",
                (SecretKey("0", "staged key; 1..N primary and secondary keys"),),
                created_by="Job keystone-keys-setup; rotated by CronJob keystone-fernet-rotate",
            ),
            SecretSpec(
                "keystone-credential-keys",
                "Credential encryption keys (files 0, 1)",
                (SecretKey("0", "credential key"), SecretKey("1", "credential key")),
                created_by="Job keystone-keys-setup",
            ),
        ],
        db_sync=db_sync,
        db_finish=db_contract,
    )
