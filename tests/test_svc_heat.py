"""Heat: bring-up order (db sync only in stage db, the stack user domain in stage
register), heat.conf, Apache (2025.1) versus uwsgi (2026.1), and that sites of 2025.1 and
2026.1 with heat enabled build and validate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_repo
from helpers import add_site, doc, ini, minimal, tree
from kkc.services import enabled_services
from kkc.site import load_site

HEAT = """\
    heat: orchestration.example.com
    heat-cfn: cfn.example.com
openstack:
  release: "{release}"
  distro: {distro}
services:
  heat:
    enabled: true
    api:
      workers: 3
    engine:
      replicas: 2
      workers: 4
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("heat") / "repo")
    add_site(root, "heat-a", minimal("heat-a", HEAT.format(release="2025.1", distro="rocky")))
    add_site(root, "heat-b", minimal("heat-b", HEAT.format(release="2026.1", distro="ubuntu")))
    return root


def env_of(container: dict) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in container["env"]}


def test_db_sync_runs_only_heat_manage(repo: Path) -> None:
    files = tree(repo, "heat-a")
    pod = doc(files, "stages/db/jobs/heat-db-sync-job.yaml")["spec"]["template"]["spec"]
    steps = [(c["name"], c["image"]) for c in pod["initContainers"] + pod["containers"]]
    assert steps == [("db-init", "kolla/kolla-toolbox"), ("db-sync", "kolla/heat-api")]
    sync = pod["containers"][0]
    env = env_of(sync)
    # not KOLLA_BOOTSTRAP: that mode also creates the domain, needing Keystone and admin
    assert "KOLLA_BOOTSTRAP" not in env and env["KOLLA_SKIP_EXTEND_START"] == ""
    assert "OS_PASSWORD" not in env
    config = json.loads(files["stages/db/config/heat-db-sync-kolla/config.json"])
    assert config["command"] == "heat-manage db_sync"


def test_register_creates_roles_and_the_stack_user_domain(repo: Path) -> None:
    files = tree(repo, "heat-a")
    job = doc(files, "stages/register/jobs/heat-ks-register-job.yaml")
    container = job["spec"]["template"]["spec"]["containers"][0]
    spec = json.loads(env_of(container)["KKC_REGISTRATION"])
    assert spec["user"] == "heat" and spec["roles"] == ["admin"]
    assert spec["roles_to_create"] == ["heat_stack_owner", "heat_stack_user"]
    (domain,) = spec["domains"]
    assert domain["name"] == "heat_user_domain" and domain["admin"] == "heat_domain_admin"
    password = next(e for e in container["env"] if e["name"] == domain["admin_password_env"])
    assert password["valueFrom"]["secretKeyRef"] == {
        "name": "heat-secrets",
        "key": "domain-admin-password",
    }
    services = {s["type"]: s for s in spec["services"]}
    assert services["orchestration"]["endpoints"] == {
        "internal": "http://heat-api.openstack.svc:8004/v1/%(tenant_id)s",
        "public": "https://orchestration.example.com/v1/%(tenant_id)s",
    }
    assert services["cloudformation"]["name"] == "heat-cfn"
    assert services["cloudformation"]["endpoints"] == {
        "internal": "http://heat-api-cfn.openstack.svc:8000/v1",
        "public": "https://cfn.example.com/v1",
    }


def test_stages_of_workloads(repo: Path) -> None:
    out = next(o for o in enabled_services(load_site(repo, "heat-a")) if o.name == "heat")
    assert {w.name: w.stage for w in out.workloads} == {
        "heat-api": "services",
        "heat-api-cfn": "services",
        "heat-engine": "services",
    }
    files = tree(repo, "heat-a")
    kustomization = doc(files, "stages/services/kustomization.yaml")
    assert {"name": "heat-engine", "count": 2} in kustomization["replicas"]


def test_heat_conf(repo: Path) -> None:
    files = tree(repo, "heat-a")
    conf = ini(files["stages/services/config/heat-engine-kolla/heat.conf"])
    assert conf.get("DEFAULT", "stack_user_domain_name") == "heat_user_domain"
    assert conf.get("DEFAULT", "stack_domain_admin") == "heat_domain_admin"
    assert conf.get("DEFAULT", "heat_metadata_server_url") == "https://cfn.example.com"
    assert (
        conf.get("DEFAULT", "heat_waitcondition_server_url")
        == "https://cfn.example.com/v1/waitcondition"
    )
    assert conf.get("DEFAULT", "num_engine_workers") == "4"
    assert not conf.has_option("DEFAULT", "stack_domain_admin_password")  # drop-in only
    keystone = "http://keystone-api.openstack.svc:5000"
    assert conf.get("trustee", "auth_url") == keystone
    assert conf.get("trustee", "username") == "heat"
    assert conf.get("clients_keystone", "auth_uri") == keystone
    assert conf.get("ec2authtoken", "auth_type") == "password"
    out = next(o for o in enabled_services(load_site(repo, "heat-a")) if o.name == "heat")
    drop_in = next(k for k in out.secrets[0].keys if k.key == "heat.conf").template
    assert 'stack_domain_admin_password = {{ index . "domain-admin-password" }}' in drop_in
    assert "[trustee]\npassword = " in drop_in and "[ec2authtoken]\npassword = " in drop_in


def test_apache_in_2025_1_uwsgi_in_2026_1(repo: Path) -> None:
    old = tree(repo, "heat-a")
    api = json.loads(old["stages/services/config/heat-api-kolla/config.json"])
    assert api["command"] == "/usr/sbin/httpd -DFOREGROUND"
    vhost = old["stages/services/config/heat-api-cfn-kolla/wsgi-heat-api-cfn.conf"].decode()
    assert "Listen 0.0.0.0:8000" in vhost and "/var/lib/kolla/venv/bin/heat-wsgi-api-cfn" in vhost
    assert "processes=3" in old["stages/services/config/heat-api-kolla/wsgi-heat-api.conf"].decode()
    new = tree(repo, "heat-b")
    for container, module, port in (
        ("heat-api", "heat.wsgi.api:application", 8004),
        ("heat-api-cfn", "heat.wsgi.cfn:application", 8000),
    ):
        config = json.loads(new[f"stages/services/config/{container}-kolla/config.json"])
        assert config["command"] == f"uwsgi /etc/heat/{container}-uwsgi.ini"
        uwsgi = ini(new[f"stages/services/config/{container}-kolla/{container}-uwsgi.ini"])
        assert uwsgi.get("uwsgi", "module") == module
        assert uwsgi.get("uwsgi", "http-socket") == f"0.0.0.0:{port}"


@pytest.mark.parametrize("name", ["heat-a", "heat-b"])
def test_site_builds_and_validates(repo: Path, kkc, name: str) -> None:
    result = kkc(repo, "build", name)
    assert result.exit_code == 0, result.output
