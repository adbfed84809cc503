"""Horizon: the dashboard in stage services with no database and no registration, its
Python settings (Keystone, memcached sessions, hosts, the SECRET_KEY read from the Secret
and never rendered), Apache on 2025.1 and uwsgi on 2026.1, and that both sites build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import make_repo
from helpers import add_site, minimal, tree
from kkc.services import enabled_services
from kkc.site import load_site

SITE = """\
    horizon: dashboard.example.com
openstack:
  release: "{release}"
  distro: {distro}
services:
  memcached:
    server:
      replicas: 2
  horizon:
    enabled: true
    server:
      replicas: 2
      workers: 4
"""
CONFIG = "stages/services/config/horizon-kolla"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("horizon") / "repo")
    add_site(root, "hz-a", minimal("hz-a", SITE.format(release="2025.1", distro="rocky")))
    add_site(root, "hz-b", minimal("hz-b", SITE.format(release="2026.1", distro="ubuntu")))
    return root


def settings(files: dict[str, bytes]) -> dict:
    """Execute the rendered settings with the secret key file faked."""
    text = files[f"{CONFIG}/_9998-kolla-settings.py"].decode()
    assert "SECRET_KEY = _key.read().strip()" in text
    text = text.replace("/etc/openstack-dashboard/.secret_key", "/dev/null")
    scope: dict = {}
    exec(compile(text, "_9998-kolla-settings.py", "exec"), scope)  # noqa: S102
    return scope


def test_services_stage_only_no_database_no_registration(repo: Path) -> None:
    files = tree(repo, "hz-a")
    assert not any(
        "horizon" in k for k in files if k.startswith(("stages/db/", "stages/register/"))
    )
    out = next(o for o in enabled_services(load_site(repo, "hz-a")) if o.name == "horizon")
    assert out.db_sync is None and out.registration is None
    assert {w.name: w.stage for w in out.workloads} == {"horizon": "services"}
    kustomization = yaml.safe_load(files["stages/services/kustomization.yaml"])
    assert "../../../../base/horizon/services" in kustomization["resources"]
    assert {"name": "horizon", "count": 2} in kustomization["replicas"]
    [secret] = out.secrets
    assert secret.name == "horizon-secrets"
    assert [(k.key, k.source, k.template) for k in secret.keys] == [
        ("secret-key", "horizon_secret_key", None)
    ]


def test_settings(repo: Path) -> None:
    files = tree(repo, "hz-a")
    conf = settings(files)
    assert conf["OPENSTACK_KEYSTONE_URL"] == "http://keystone-api.openstack.svc:5000/v3"
    assert conf["SESSION_ENGINE"] == "django.contrib.sessions.backends.cache"
    cache = conf["CACHES"]["default"]
    assert cache["BACKEND"] == "django.core.cache.backends.memcached.PyMemcacheCache"
    assert cache["LOCATION"] == ["memcached-0.memcached:11211", "memcached-1.memcached:11211"]
    assert conf["ALLOWED_HOSTS"][0] == "dashboard.example.com"
    assert "horizon" in conf["ALLOWED_HOSTS"]  # the probes' Host header
    assert conf["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert conf["CSRF_TRUSTED_ORIGINS"] == ["https://dashboard.example.com"]
    assert conf["DEBUG"] is False
    assert conf["SECRET_KEY"] == ""  # read from the (here empty) file
    cfg = json.loads(files[f"{CONFIG}/config.json"])
    copies = {c["dest"]: c["source"] for c in cfg["config_files"]}
    assert copies["/etc/openstack-dashboard/.secret_key"] == (
        "/var/lib/kolla/secret_files/secret-key"
    )
    assert copies["/etc/openstack-dashboard/local_settings.d/_9998-kolla-settings.py"] == (
        "/var/lib/kolla/config_files/_9998-kolla-settings.py"
    )
    # Python and Apache files are not *.conf (the INI catalog check reads those)
    assert not any(k.startswith(CONFIG) and k.endswith(".conf") for k in files)


def test_apache_on_2025_1(repo: Path) -> None:
    files = tree(repo, "hz-a")
    cfg = json.loads(files[f"{CONFIG}/config.json"])
    assert cfg["command"] == "/usr/sbin/httpd -DFOREGROUND"
    copies = {c["source"].rsplit("/", 1)[1]: c["dest"] for c in cfg["config_files"]}
    assert copies["horizon-vhost.apache"] == "/etc/httpd/conf.d/horizon.conf"
    vhost = files[f"{CONFIG}/horizon-vhost.apache"].decode()
    assert "Listen 0.0.0.0:80" in vhost
    assert "WSGIDaemonProcess horizon-http processes=4 threads=1 user=horizon" in vhost


def test_uwsgi_on_2026_1(repo: Path) -> None:
    files = tree(repo, "hz-b")
    cfg = json.loads(files[f"{CONFIG}/config.json"])
    assert cfg["command"] == "uwsgi /etc/horizon/horizon-uwsgi.ini"
    ini = files[f"{CONFIG}/horizon-uwsgi.ini"].decode()
    assert "module = openstack_dashboard.wsgi:application" in ini
    assert "http-socket = 0.0.0.0:80" in ini
    assert "static-map = /static=/var/lib/kolla/venv/lib/python3/site-packages/static" in ini
    assert "processes = 4" in ini
    assert f"{CONFIG}/horizon-vhost.apache" not in files


@pytest.mark.parametrize("name", ["hz-a", "hz-b"])
def test_site_builds_and_validates(repo: Path, kkc, name: str) -> None:
    result = kkc(repo, "build", name)
    assert result.exit_code == 0, result.output
