"""Apache with mod_wsgi (``/usr/sbin/httpd -DFOREGROUND`` of the Rocky images,
``/usr/sbin/apache2`` of the Ubuntu and Debian ones) does not exist on this machine. The
harness runs the same WSGI application with the same vhost settings under uWSGI instead,
and says so in its output: the rendered vhosts' ``Listen``, ``WSGIScriptAlias /``,
``WSGIDaemonProcess`` (processes, threads, user, group) and ``Alias`` (static files)
become uWSGI options."""

from __future__ import annotations

import re
from pathlib import Path

HTTPD = ("/usr/sbin/httpd", "httpd", "/usr/sbin/apache2", "apache2")


class ApacheError(Exception):
    pass


def is_httpd(argv: list[str]) -> bool:
    return bool(argv) and argv[0] in HTTPD


# Where each Apache reads its vhosts: httpd (Rocky) its conf.d; apache2 (the Debian and
# Ubuntu images: keystone's config.json of 2025.1 on Ubuntu copies wsgi-keystone.conf to
# conf-enabled/) what apache2.conf includes
CONF_DIRS = {
    "httpd": ("etc/httpd/conf.d",),
    "apache2": ("etc/apache2/conf-enabled", "etc/apache2/sites-enabled"),
}


def vhosts(binary: str, root: Path = Path("/")) -> list[str]:
    """The configuration files the Apache ``binary`` (httpd, apache2) reads its vhosts
    from, below ROOT."""
    dirs = CONF_DIRS[Path(binary).name]
    return [p.read_text() for d in dirs for p in sorted((root / d).glob("*.conf"))]


def uwsgi_argv(texts: list[str], uwsgi: str = "uwsgi") -> list[str]:
    """The uWSGI command that serves what the vhost configuration ``texts`` serve."""
    text = "\n".join(re.sub(r"#.*", "", t) for t in texts)
    listen = re.findall(r"^\s*Listen\s+(\S+)", text, re.M)
    script = re.findall(r"^\s*WSGIScriptAlias\s+/\s+(\S+)", text, re.M)
    if not listen or not script:
        raise ApacheError("no Listen and WSGIScriptAlias / in the Apache configuration")
    if len(listen) > 1 or len(script) > 1:
        raise ApacheError("more than one Listen or WSGI application in the Apache configuration")
    addr = listen[0] if ":" in listen[0] else f"0.0.0.0:{listen[0]}"
    daemon = dict(
        re.findall(r"(\w[\w-]*)=(\S+)", " ".join(re.findall(r"WSGIDaemonProcess\s+\S+(.*)", text)))
    )
    argv = [
        uwsgi,
        "--master",
        "--die-on-term",
        "--need-app",
        # bound by the master as root before it drops to the vhost's user, as httpd
        # binds port 80 (horizon) before its children switch users
        "--shared-socket",
        addr,
        "--http-socket",
        "=0",
        "--wsgi-file",
        script[0],
        "--processes",
        daemon.get("processes", "1"),
        "--threads",
        daemon.get("threads", "15"),
        "--buffer-size",
        "65535",
        # as kkc's own uWSGI APIs (kkc.services.wsgi): uWSGI closes the connection after
        # each response, and clients must not reuse it (else "Connection reset by peer")
        "--add-header",
        "Connection: close",
        "--enable-threads",
        "--lazy-apps",
    ]
    for key in ("user", "group"):
        if key in daemon:
            argv += ["--uid" if key == "user" else "--gid", daemon[key]]
    for url, path in re.findall(r"^\s*Alias\s+(\S+)\s+(\S+)", text, re.M):
        argv += ["--static-map", f"{url}={path}"]
    return argv
