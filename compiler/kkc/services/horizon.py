"""Horizon: the dashboard (stage services) on port 80; no database, no catalog entry.

The Kolla horizon image loads the example ``local_settings.py``, then every
``/etc/openstack-dashboard/local_settings.d/*.py`` in name order. Like kolla-ansible,
kkc writes its settings to ``_9998-kolla-settings.py`` (Python, not INI): Keystone's
internal endpoint, sessions in memcached, the public host name. The SECRET_KEY is never
in the settings or in git: kolla_set_configs copies it from the Secret
``horizon-secrets`` to /etc/openstack-dashboard/.secret_key and the settings read it.

Web server per release (:mod:`kkc.releases`): Apache with mod_wsgi where horizon is not in
``uwsgi`` (2025.1; kolla-ansible's vhost, /static served by Apache), else uwsgi with
/static mapped to the collected files (2026.1+). At every start the image's
extend_start.sh collects and compresses the static files before the server starts.
"""

from __future__ import annotations

from ..model import Site
from ..releases import RELEASES, rhel_family
from .common import (
    ConfigFile,
    Port,
    SecretKey,
    SecretSpec,
    ServiceConfig,
    ServiceOutput,
    ServiceSpec,
    Workload,
    header,
    keystone_internal,
    memcache_servers,
)
from .wsgi import apache, apache_server, uwsgi_ini

PORT = 80
SPEC = ServiceSpec(
    requires=("keystone", "memcached"),
    ports=(Port("horizon", PORT, "services", public="horizon"),),
)
SITE_PACKAGES = "/var/lib/kolla/venv/lib/python3/site-packages"
SECRET_KEY_FILE = "/etc/openstack-dashboard/.secret_key"
SETTINGS_D = "/etc/openstack-dashboard/local_settings.d"


def uses_uwsgi(site: Site) -> bool:
    return "horizon" in RELEASES[site.get("openstack.release")].uwsgi


def _py(value: object) -> str:
    """A Python literal (repr of str/bool/int/list/tuple of those)."""
    return repr(value)


# The settings without site values, after OPENSTACK_KEYSTONE_URL.
STATIC_SETTINGS = (
    "OPENSTACK_KEYSTONE_DEFAULT_ROLE = 'member'",
    "OPENSTACK_KEYSTONE_MULTIDOMAIN_SUPPORT = False",
    "OPENSTACK_ENDPOINT_TYPE = 'internalURL'",
    "OPENSTACK_KEYSTONE_BACKEND = {",
    "    'name': 'native',",
    "    'can_edit_user': True,",
    "    'can_edit_group': True,",
    "    'can_edit_project': True,",
    "    'can_edit_domain': True,",
    "    'can_edit_role': True,",
    "}",
    "OPENSTACK_HYPERVISOR_FEATURES = {",
    "    'can_set_mount_point': False,",
    "    'can_set_password': False,",
    "    'requires_keypair': False,",
    "    'enable_quotas': True,",
    "}",
    "OPENSTACK_NEUTRON_NETWORK = {",
    "    'enable_router': True,",
    "    'enable_quotas': True,",
    "    'enable_ipv6': True,",
    "    'enable_distributed_router': False,",
    "    'enable_ha_router': False,",
    "    'enable_fip_topology_check': True,",
    "    'supported_vnic_types': ['*'],",
    "}",
    "OPENSTACK_HEAT_STACK = {'enable_user_pass': True}",
    "HORIZON_IMAGES_UPLOAD_MODE = 'direct'",
    "API_RESULT_LIMIT = 1000",
    "API_RESULT_PAGE_SIZE = 20",
    "DROPDOWN_MAX_ITEMS = 30",
    "TIME_ZONE = 'UTC'",
    "LOCAL_PATH = '/tmp'",
    "EMAIL_BACKEND = 'django.core.mail.backends.console.EmailBackend'",
    "POLICY_FILES_PATH = '/etc/openstack-dashboard'",
    "",
    "# Everything to stderr (the container log).",
    "LOGGING = {",
    "    'version': 1,",
    "    'disable_existing_loggers': False,",
    "    'handlers': {",
    "        'null': {'level': 'DEBUG', 'class': 'logging.NullHandler'},",
    "        'console': {'level': 'INFO', 'class': 'logging.StreamHandler'},",
    "    },",
    "    'loggers': {",
    "        'django.db.backends': {'handlers': ['null'], 'propagate': False},",
    "        'requests': {'handlers': ['null'], 'propagate': False},",
    "        'iso8601': {'handlers': ['null'], 'propagate': False},",
    "        'scss': {'handlers': ['null'], 'propagate': False},",
    "    },",
    "    'root': {'handlers': ['console'], 'level': 'INFO'},",
    "}",
)


def settings(site: Site) -> str:
    """``_9998-kolla-settings.py``: kolla-ansible's settings, kkc's values."""
    host = site.get("endpoints.hosts.horizon")
    scheme = site.get("endpoints.scheme")
    servers = memcache_servers(site).split(",")
    # The public name, plus the in-cluster names the probes and port-forwards use.
    allowed = [host, "horizon", f"horizon.{site.get('namespace')}.svc", "localhost"]
    lines = [
        f"# {header(site)}",
        "# Loaded by openstack_dashboard.settings after local_settings.py (name order).",
        "DEBUG = False",
        "TEMPLATE_DEBUG = DEBUG",
        "COMPRESS_OFFLINE = True",
        "WEBROOT = '/'",
        f"ALLOWED_HOSTS = {_py(allowed)}",
        "",
        "# Sessions in memcached: any replica serves any request.",
        "SESSION_ENGINE = 'django.contrib.sessions.backends.cache'",
        "CACHES = {",
        "    'default': {",
        "        'BACKEND': 'django.core.cache.backends.memcached.PyMemcacheCache',",
        f"        'LOCATION': {_py(servers)},",
        "        'OPTIONS': {'ignore_exc': True},",
        "    },",
        "}",
        "",
        "# The key shared by all replicas (sessions, CSRF), from the Secret horizon-secrets.",
        f"with open({_py(SECRET_KEY_FILE)}, encoding='utf-8') as _key:",
        "    SECRET_KEY = _key.read().strip()",
        "",
    ]
    if scheme == "https":
        lines += [
            "# TLS ends at the ingress, which sets X-Forwarded-Proto.",
            "SECURE_PROXY_SSL_HEADER = ('HTTP_X_FORWARDED_PROTO', 'https')",
            "CSRF_COOKIE_SECURE = True",
            "SESSION_COOKIE_SECURE = True",
        ]
    lines += [
        f"CSRF_TRUSTED_ORIGINS = {_py([f'{scheme}://{host}'])}",
        "",
        "OPENSTACK_API_VERSIONS = {'identity': 3}",
        f"OPENSTACK_KEYSTONE_URL = {_py(keystone_internal(site) + '/v3')}",
        *STATIC_SETTINGS,
    ]
    return "\n".join(lines) + "\n"


def _apache_vhost(site: Site, workers: int) -> str:
    """kolla-ansible's horizon.conf on every address (Apache, 2025.1)."""
    return apache_server(
        site,
        PORT,
        [
            "LogLevel warn",
            'ErrorLogFormat "%{cu}t %M"',
            "ErrorLog /dev/stderr",
            'LogFormat "%{X-Forwarded-For}i %l %u %t \\"%r\\" %>s %b %D '
            '\\"%{Referer}i\\" \\"%{User-Agent}i\\"" logformat',
            "CustomLog /dev/stdout logformat",
            f"WSGIDaemonProcess horizon-http processes={workers} threads=1 "
            "user=horizon group=horizon display-name=horizon",
            "WSGIProcessGroup horizon-http",
            f"WSGIScriptAlias / {SITE_PACKAGES}/openstack_dashboard/wsgi.py",
            "WSGIPassAuthorization On",
            "WSGIApplicationGroup %{GLOBAL}",
            '<Location "/">',
            "    Require all granted",
            "</Location>",
            f"Alias /static {SITE_PACKAGES}/static",
            '<Location "/static">',
            "    SetHandler None",
            "</Location>",
        ],
        timeouts=False,
    )


def horizon(site: Site) -> ServiceOutput:
    workers = site.get("services.horizon.server.workers")
    # No oslo.config file and no drop-in: the settings are Python (below).
    kolla = ServiceConfig("horizon", drop_in=None)
    if uses_uwsgi(site):
        # kolla-ansible's service-uwsgi-config for horizon (2026.1): /static from disk.
        cfg = kolla.uwsgi(
            "horizon",
            uwsgi_ini(
                site,
                "horizon",
                "openstack_dashboard.wsgi:application",
                PORT,
                workers,
                static_map=f"{SITE_PACKAGES}/static",
            ),
        )
    else:
        httpd = apache(site)
        rhel = rhel_family(site.get("openstack.distro"))
        vhost = f"{httpd.conf_dir}/horizon.conf" if rhel else f"{httpd.conf_dir}/000-default.conf"
        # Not named *.conf here: an Apache vhost, not an oslo.config file.
        cfg = kolla.config(
            "horizon-kolla",
            f"{httpd.binary} -DFOREGROUND",
            ConfigFile("horizon-vhost.apache", _apache_vhost(site, workers), vhost),
        )
    cfg.add_file(
        "_9998-kolla-settings.py",
        settings(site),
        f"{SETTINGS_D}/_9998-kolla-settings.py",
        "horizon",
    )
    cfg.copy("secret-key", SECRET_KEY_FILE, "horizon", secret=True)
    secret = SecretSpec(
        "horizon-secrets",
        "Horizon's Django SECRET_KEY (sessions and CSRF tokens of every replica)",
        (SecretKey("secret-key", "Django SECRET_KEY", source="horizon_secret_key"),),
    )
    return ServiceOutput(
        "horizon",
        ["horizon"],
        [Workload("Deployment", "horizon", "horizon", "services", "server", scalable=True)],
        {"services": [cfg]},
        [secret],
    )
