"""Heat: database and schema (stage db); the orchestration and cloudformation services,
the stack user domain and the heat roles in Keystone (stage register); heat-api,
heat-api-cfn and heat-engine (stage services).

The heat-api image's KOLLA_BOOTSTRAP mode would also create the stack user domain with
the openstack CLI, which needs Keystone and admin credentials in the db stage; here the
db-sync step runs only ``heat-manage db_sync`` and the domain (``heat_user_domain``, its
admin ``heat_domain_admin``) is created by the registration Job, when Keystone is up.
"""

from __future__ import annotations

from ..kolla import Ini, KollaConfig
from ..model import Site
from ..releases import RELEASES
from .common import (
    ConfigFile,
    DbSync,
    Endpoint,
    Port,
    Registration,
    SecretKey,
    ServiceConfig,
    ServiceOutput,
    ServiceSpec,
    Workload,
    conf_file,
    internal_url,
    keystone_internal,
    kolla_step,
    log_dir,
    memcache_servers,
    openstack_ini,
    public_url,
    service_secret,
)
from .wsgi import apache, uwsgi_ini, wsgi_vhost

API_PORT = 8004
CFN_PORT = 8000
SPEC = ServiceSpec(
    requires=("keystone", "mariadb", "rabbitmq"),
    ports=(
        Port("heat-api", API_PORT, "services", public="heat"),
        Port("heat-api-cfn", CFN_PORT, "services", public="heat-cfn"),
    ),
)
DOMAIN = "heat_user_domain"
DOMAIN_ADMIN = "heat_domain_admin"
STACK_OWNER_ROLE = "heat_stack_owner"
STACK_USER_ROLE = "heat_stack_user"
DOMAIN_PASSWORD_ENV = "HEAT_DOMAIN_ADMIN_PASSWORD"
SKIP = ("KOLLA_SKIP_EXTEND_START", "")

# container -> (site component, port, uwsgi module, mod_wsgi script of the 2025.1 images)
APIS = {
    "heat-api": ("api", API_PORT, "heat.wsgi.api:application", "heat-wsgi-api"),
    "heat-api-cfn": ("cfn", CFN_PORT, "heat.wsgi.cfn:application", "heat-wsgi-api-cfn"),
}


def _ksa(site: Site) -> dict[str, object]:
    """keystoneauth options of a client acting as the heat user (password in the drop-in)."""
    return {
        "auth_type": "password",
        "auth_url": keystone_internal(site),
        "user_domain_id": "default",
        "username": "heat",
    }


def _ini(site: Site) -> Ini:
    cfn = public_url(site, "heat-cfn")
    return openstack_ini(
        site,
        "heat",
        {
            "DEFAULT": {
                # Instances call back to the CloudFormation API through its public host.
                "heat_metadata_server_url": cfn,
                "heat_waitcondition_server_url": f"{cfn}/v1/waitcondition",
                "heat_stack_user_role": STACK_USER_ROLE,
                "stack_user_domain_name": DOMAIN,
                "stack_domain_admin": DOMAIN_ADMIN,
                "num_engine_workers": site.get("services.heat.engine.workers"),
                "region_name_for_services": site.get("region"),
                "server_keystone_endpoint_type": "public",
            },
            "keystone_authtoken": {"service_type": "orchestration"},
            "cache": {
                "enabled": True,
                "backend": "oslo_cache.memcache_pool",
                "memcache_servers": memcache_servers(site),
            },
            # Trusts for deferred operations (autoscaling, signals) are delegated to heat.
            "trustee": _ksa(site),
            "clients": {"endpoint_type": "internalURL"},
            "clients_keystone": {"auth_uri": keystone_internal(site)},
            # EC2 signature validation (cfn API) against keystone's /v3/ec2tokens, with a
            # service token as recent keystone policies require.
            "ec2authtoken": {
                **_ksa(site),
                "project_domain_id": "default",
                "project_name": "service",
                "region_name": site.get("region"),
            },
        },
    )


def _registration(site: Site) -> Registration:
    """The two APIs in the catalog; the stack domain, its admin and the heat roles."""
    return Registration(
        "heat",
        (
            Endpoint(
                "orchestration",
                "heat",
                "Orchestration",
                internal_url(site, "heat-api", API_PORT, "/v1/%(tenant_id)s"),
                public_url(site, "heat", "/v1/%(tenant_id)s"),
            ),
            Endpoint(
                "cloudformation",
                "heat-cfn",
                "Orchestration (CloudFormation)",
                internal_url(site, "heat-api-cfn", CFN_PORT, "/v1"),
                public_url(site, "heat-cfn", "/v1"),
            ),
        ),
        roles=("admin",),
        extra=(
            ("roles_to_create", [STACK_OWNER_ROLE, STACK_USER_ROLE]),
            (
                "domains",
                [
                    {
                        "name": DOMAIN,
                        "description": "Owns the users and projects Heat creates for stacks",
                        "admin": DOMAIN_ADMIN,
                        "admin_password_env": DOMAIN_PASSWORD_ENV,
                    }
                ],
            ),
        ),
        secret_env=((DOMAIN_PASSWORD_ENV, "heat-secrets", "domain-admin-password"),),
    )


def heat(site: Site) -> ServiceOutput:
    release = RELEASES[site.get("openstack.release")]
    kolla = ServiceConfig(
        "heat",
        (ConfigFile("heat.conf", conf_file(site, _ini(site)), "/etc/heat/heat.conf"),),
        permissions=(log_dir("heat"),),
    )
    config = kolla.config
    configs: list[KollaConfig] = []
    for container, (component, port, module, script) in APIS.items():
        workers = site.get(f"services.heat.{component}.workers")
        if "heat" in release.uwsgi:
            cfg = kolla.uwsgi(container, uwsgi_ini(site, "heat", module, port, workers))
        else:
            # Apache in the foreground, as kolla-ansible's heat-api.json (2025.1); the image's
            # extend_start.sh removes stale Apache run files first.
            httpd = apache(site)
            cfg = config(
                f"{container}-kolla",
                f"{httpd.binary} -DFOREGROUND",
                ConfigFile(
                    f"wsgi-{container}.conf",
                    wsgi_vhost(site, "heat", container, container, port, script, workers),
                    f"{httpd.conf_dir}/wsgi-{container}.conf",
                ),
            )
        configs.append(cfg)
    engine = config("heat-engine-kolla", "heat-engine --config-file /etc/heat/heat.conf")
    configs.append(engine)

    db_sync = DbSync(
        "heat",
        ("heat",),
        (
            kolla_step(
                "db-sync",
                "heat-api",
                config("heat-db-sync-kolla", "heat-manage db_sync"),
                SKIP,
            ),
        ),
    )
    registration = _registration(site)
    password = '{{ index . "keystone-password" }}'
    secret = service_secret(
        site,
        "heat",
        "Heat database, RabbitMQ, Keystone and stack domain admin passwords and the "
        "heat.conf drop-in",
        {
            "DEFAULT": {"stack_domain_admin_password": '{{ index . "domain-admin-password" }}'},
            "trustee": {"password": password},
            "ec2authtoken": {"password": password},
        },
        extra=(
            SecretKey(
                "domain-admin-password",
                f"password of the Keystone user {DOMAIN_ADMIN} (domain {DOMAIN})",
                source="heat_domain_admin_password",
            ),
        ),
    )

    def deployment(name: str, component: str) -> Workload:
        return Workload("Deployment", name, name, "services", component, scalable=True)

    return ServiceOutput(
        "heat",
        ["heat-api", "heat-api-cfn", "heat-engine", "kolla-toolbox"],
        [
            deployment("heat-api", "api"),
            deployment("heat-api-cfn", "cfn"),
            deployment("heat-engine", "engine"),
        ],
        {"services": configs},
        [secret],
        db_sync=db_sync,
        registration=registration,
    )
