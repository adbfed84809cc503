"""How an OpenStack API runs in its Kolla image: uwsgi in the foreground (the 2025.2+ way)
or Apache with mod_wsgi (the images of releases that do not list the service in
``Release.uwsgi``), as kolla-ansible configures them. The one copy of those snippets."""

from __future__ import annotations

from dataclasses import dataclass

from ..kolla import render_ini
from ..model import Site
from ..releases import rhel_family
from .common import header

# kolla-ansible's service-uwsgi-config: image uploads (glance) need the HTTP router with
# chunked input, for bodies without Content-Length.
CHUNKED_INPUT_LIMIT = 64 * 1024 * 1024


def uwsgi_ini(
    site: Site,
    svc: str,
    module: str,
    port: int,
    workers: int,
    *,
    chunked_input: bool = False,
    static_map: str = "",
) -> str:
    """uwsgi in the foreground for a Kolla API image, on every address of ``port``.

    ``chunked_input``: uwsgi's HTTP router (``http``, not ``http-socket``) with chunked
    uploads (glance-api); ``static_map``: ``/static`` served from that directory
    (horizon)."""
    opts: dict[str, object] = {"add-header": "Connection: close", "buffer-size": 65535}
    if chunked_input:
        opts["chunked-input-limit"] = CHUNKED_INPUT_LIMIT
    opts.update(
        {
            "die-on-term": True,
            "enable-threads": True,
            "exit-on-reload": False,
            "hook-master-start": "unix_signal:15 gracefully_kill_them_all",
        }
    )
    if chunked_input:
        opts.update(
            {
                "http": f"0.0.0.0:{port}",
                "http-auto-chunked": True,
                "http-chunked-input": True,
                "http-raw-body": True,
            }
        )
    else:
        opts["http-socket"] = f"0.0.0.0:{port}"
    opts.update(
        {
            "lazy-apps": True,
            "master": True,
            "module": module,
            "need-app": True,
            "processes": workers,
        }
    )
    if chunked_input:
        opts["socket-timeout"] = 30
    else:
        opts["threads"] = 1
    opts.update({"thunder-lock": True, "uid": svc, "gid": svc, "worker-reload-mercy": 80})
    if static_map:
        opts["static-map"] = f"/static={static_map}"
    return render_ini({"uwsgi": opts}, header(site))


@dataclass(frozen=True)
class Apache:
    """The distribution's Apache: its binary and the directory of included .conf files."""

    binary: str
    conf_dir: str


def apache(site: Site) -> Apache:
    if rhel_family(site.get("openstack.distro")):
        return Apache("/usr/sbin/httpd", "/etc/httpd/conf.d")
    return Apache("/usr/sbin/apache2", "/etc/apache2/conf-enabled")


def apache_server(site: Site, port: int, vhost: list[str], *, timeouts: bool = True) -> str:
    """An Apache config listening on every address of ``port`` with one virtual host
    (``vhost``: its lines, indented), errors to stderr; ``timeouts``: kolla-ansible's
    TimeOut and KeepAliveTimeout of the API services."""
    lines = [
        f"# {header(site)}",
        f"Listen 0.0.0.0:{port}",
        "ServerSignature Off",
        "ServerTokens Prod",
        "TraceEnable off",
    ]
    if timeouts:
        lines += ["TimeOut 60", "KeepAliveTimeout 60"]
    lines += ["ErrorLog /dev/stderr", "", f"<VirtualHost *:{port}>"]
    lines += [f"    {line}" for line in vhost]
    return "\n".join([*lines, "</VirtualHost>", ""])


def wsgi_vhost(
    site: Site,
    svc: str,
    group: str,
    display: str,
    port: int,
    script: str,
    workers: int,
    client: str = "%{X-Forwarded-For}i",
) -> str:
    """kolla-ansible's wsgi-<service>.conf: mod_wsgi daemon ``group`` (processes named
    ``display``) running /var/lib/kolla/venv/bin/``script`` as ``svc``; the access log
    names the client by ``client``."""
    return apache_server(
        site,
        port,
        [
            f"WSGIDaemonProcess {group} processes={workers} threads=1 "
            f"user={svc} group={svc} display-name={display}",
            f"WSGIProcessGroup {group}",
            f"WSGIScriptAlias / /var/lib/kolla/venv/bin/{script}",
            "WSGIApplicationGroup %{GLOBAL}",
            "WSGIPassAuthorization On",
            'ErrorLogFormat "%{cu}t %M"',
            "ErrorLog /dev/stderr",
            f'CustomLog /dev/stdout "{client} %l %u %t \\"%r\\" %>s %b %D"',
        ],
    )
