"""Keystone: keys, schema expand and bootstrap (stage db), the API (stage identity),
the schema contract (stage finish)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from ..kolla import CONFIG_DIR, SECRET_DIR, IniFile, KollaConfig
from ..model import Site
from ..releases import RELEASES
from .common import (
    KEY_SETS,
    KEYSTONE_PORT,
    KOLLA_SECURITY,
    ROTATES,
    ConfigFile,
    DbSync,
    Port,
    SecretKey,
    SecretSpec,
    ServiceConfig,
    ServiceOutput,
    ServiceSpec,
    Workload,
    conf_file,
    db_finish,
    job_object,
    keystone_internal,
    kolla_step,
    log_dir,
    memcache_servers,
    public_url,
    rotation_generation,
    service_secret,
)
from .wsgi import apache, uwsgi_ini, wsgi_vhost

EXPIRED_WINDOW = 172800  # [token] allow_expired_window default
KEYS_COMMAND = "/var/lib/kolla/venv/bin/python3 /var/lib/kkc/scripts/keystone-keys.py"
SPEC = ServiceSpec(
    requires=("mariadb", "memcached"),
    ports=(Port("keystone-api", KEYSTONE_PORT, "identity", public="keystone"),),
)


def _conf(site: Site) -> IniFile:
    """keystone.conf: Fernet tokens and keys, the cache in memcached."""
    ks = site.get("services.keystone")
    expiry = ks["tokenExpiration"]
    rotation = ks["fernetRotationHours"] * 3600
    return conf_file(
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


def _api(site: Site, kolla: ServiceConfig, workers: int) -> KollaConfig:
    """keystone-api: under uwsgi, or Apache with mod_wsgi (2025.1)."""
    release = RELEASES[site.get("openstack.release")]
    api_kolla = replace(kolla, permissions=(log_dir("keystone"),))
    if "keystone" in release.uwsgi:
        api = api_kolla.uwsgi(
            "keystone-api",
            uwsgi_ini(site, "keystone", "keystone.wsgi.api:application", KEYSTONE_PORT, workers),
        )
    else:
        # Apache in the foreground: the image's extend_start.sh cleans stale run files and
        # appends -DFOREGROUND. (kolla-ansible's keystone-startup.sh is not in the image;
        # the wait for fernet key 0 is the kubelet's: the key Secret volume is required.)
        httpd = apache(site)
        vhost = wsgi_vhost(
            site,
            "keystone",
            "keystone-public",
            "keystone-public",
            KEYSTONE_PORT,
            "keystone-wsgi-public",
            workers,
            client="%h",
        )
        api = api_kolla.config(
            "keystone-api-kolla",
            httpd.binary,
            ConfigFile("wsgi-keystone.conf", vhost, f"{httpd.conf_dir}/wsgi-keystone.conf"),
        )
    return api


def _secrets(site: Site) -> list[SecretSpec]:
    """keystone-secrets (passwords, drop-in) and the key Secrets its Jobs create."""
    secret = service_secret(
        site,
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
    return [
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
    ]


def _bootstrap(site: Site) -> str:
    """keystone-manage bootstrap: the admin user, project and role; the identity service
    and its endpoints in the catalog."""
    internal = keystone_internal(site)
    return " ".join(
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


# What a rotation Job of each key set does (KKC_KEYS_ACTION of keystone-keys.py).
_KEY_ROTATION = {
    "keystone-credential-keys": (
        "rotate-credential",
        "credential-rotate",
        "credential_migrate, credential_rotate (keys back into keystone-credential-keys), "
        "credential_migrate: every credential re-encrypted with the new primary key",
    ),
    "keystone-fernet-keys": (
        "rotate",
        "fernet-rotate",
        "fernet_rotate now (as the CronJob keystone-fernet-rotate does on its schedule)",
    ),
}


def _key_rotation_job(site: Site, keys: str, config: str, generation: int) -> dict[str, Any]:
    """The Job of a key set's rotation generation (secrets.rotation.<Secret>): the
    CronJob's pod, with the generation, which keystone-keys.py records on the Secret so
    that a retried pod does not rotate twice. The credential keys' Job reads the database
    (credential_migrate): keystone.conf with the drop-in of keystone-secrets."""
    action, component, doc = _KEY_ROTATION[keys]
    mounts = [
        {"name": "kolla-config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "scripts", "mountPath": "/var/lib/kkc/scripts", "readOnly": True},
        {"name": "fernet-keys", "mountPath": "/etc/keystone/fernet-keys"},
        {"name": "credential-keys", "mountPath": "/etc/keystone/credential-keys"},
        {"name": "kolla-logs", "mountPath": "/var/log/kolla"},
    ]
    memory = {"emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
    volumes = [
        {"name": "kolla-config", "configMap": {"name": config}},
        {"name": "scripts", "configMap": {"name": "keystone-scripts"}},
        {"name": "fernet-keys", **memory},
        {"name": "credential-keys", **memory},
        {"name": "kolla-logs", "emptyDir": {}},
    ]
    if action == "rotate-credential":
        mounts.append({"name": "kolla-secrets", "mountPath": SECRET_DIR, "readOnly": True})
        volumes.append(
            {
                "name": "kolla-secrets",
                "secret": {"secretName": "keystone-secrets", "defaultMode": 0o440},
            }
        )
    env = [("KOLLA_CONFIG_STRATEGY", "COPY_ALWAYS"), ("KOLLA_SKIP_EXTEND_START", "")]
    env += [("KKC_KEYS_ACTION", action), ("KKC_KEYS_GENERATION", str(generation))]
    container = {
        "name": "keys",
        "image": "kolla/keystone",
        "imagePullPolicy": "IfNotPresent",
        "env": [{"name": k, "value": v} for k, v in env],
        "resources": {
            "requests": {"cpu": "50m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "512Mi"},
        },
        "securityContext": KOLLA_SECURITY,
        "volumeMounts": mounts,
    }
    job = job_object(site, "keystone", component, KEY_SETS[keys], [container], volumes, doc=doc)
    pod = job["spec"]["template"]["spec"]
    pod["serviceAccountName"] = "keystone-keys"
    pod["automountServiceAccountToken"] = True  # the Kubernetes API: the key Secrets
    job["spec"]["backoffLimit"] = 6
    job["metadata"]["annotations"][ROTATES] = keys
    return job


def _key_rotations(site: Site, kolla: ServiceConfig) -> tuple[list[KollaConfig], list[dict]]:
    """(configs, Jobs) of the key sets with a rotation generation (stage db)."""
    configs: list[KollaConfig] = []
    jobs = []
    for keys in sorted(KEY_SETS):
        generation = rotation_generation(site, keys)
        if not generation:
            continue
        config = "keystone-keys-kolla"
        if keys == "keystone-credential-keys":  # credential_migrate reads the database
            config = "keystone-credential-rotate-kolla"
            configs.append(kolla.config(config, KEYS_COMMAND))
        jobs.append(_key_rotation_job(site, keys, config, generation))
    return configs, jobs


def keystone(site: Site) -> ServiceOutput:
    kolla = ServiceConfig(
        "keystone", (ConfigFile("keystone.conf", _conf(site), "/etc/keystone/keystone.conf"),)
    )
    config = kolla.config
    api = _api(site, kolla, site.get("services.keystone.api.workers"))

    bootstrap = _bootstrap(site)
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
    keys = config("keystone-keys-kolla", KEYS_COMMAND, secrets=False)
    rotation_configs, rotation_jobs = _key_rotations(site, kolla)
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
        {"db": [keys, *rotation_configs], "identity": [api]},
        _secrets(site),
        db_sync=db_sync,
        db_finish=db_contract,
        manifests={"db": rotation_jobs} if rotation_jobs else {},
    )
