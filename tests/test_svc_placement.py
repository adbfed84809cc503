"""Placement: bring-up order (db-sync step, online migrations in stage finish, stages),
registration, [placement_database] in the drop-in, uwsgi on every release, and that 2025.1
and 2026.1 sites build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_repo
from helpers import (
    add_site,
    assert_finish_after_compute,
    bring_up_order,
    doc,
    finish_step,
    ini,
    minimal,
    service_output,
    tree,
)

SITE = """\
    placement: placement.example.com
openstack:
  release: "{release}"
  distro: {distro}
services:
  placement:
    enabled: true
    api:
      replicas: 2
      workers: 3
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("placement") / "repo")
    add_site(root, "pl-a", minimal("pl-a", SITE.format(release="2025.1", distro="rocky")))
    add_site(root, "pl-b", minimal("pl-b", SITE.format(release="2026.1", distro="ubuntu")))
    return root


def test_db_sync_then_registration_then_api(repo: Path) -> None:
    files = tree(repo, "pl-a")
    pod = doc(files, "stages/db/jobs/placement-db-sync-job.yaml")["spec"]["template"]["spec"]
    steps = [(c["name"], c["image"]) for c in pod["initContainers"] + pod["containers"]]
    assert steps == [("db-init", "kolla/kolla-toolbox"), ("db-sync", "kolla/placement-api")]
    sync = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    # KOLLA_UPGRADE: placement-manage db sync only (KOLLA_BOOTSTRAP adds online migrations)
    assert sync == {"KOLLA_CONFIG_STRATEGY": "COPY_ALWAYS", "KOLLA_UPGRADE": ""}
    assert "stages/register/jobs/placement-ks-register-job.yaml" in files
    out = service_output(repo, "pl-a", "placement")
    assert {w.name: w.stage for w in out.workloads} == {"placement-api": "services"}
    kustomization = doc(files, "stages/services/kustomization.yaml")
    assert "../../../../base/placement/services" in kustomization["resources"]
    assert {"name": "placement-api", "count": 2} in kustomization["replicas"]


@pytest.mark.parametrize("name", ["pl-a", "site-a"])
def test_online_data_migrations_in_stage_finish(repo: Path, name: str) -> None:
    """KOLLA_OSM once placement-api runs the new release; on site-a (with computes) after
    stage compute."""
    files = tree(repo, name)
    _pod, step = finish_step(files, "placement")
    assert (step["name"], step["image"]) == ("online-data-migrations", "kolla/placement-api")
    env = {e["name"]: e.get("value") for e in step["env"]}
    assert env == {"KOLLA_CONFIG_STRATEGY": "COPY_ALWAYS", "KOLLA_OSM": ""}
    cfg = "stages/finish/config/placement-online-migrations-kolla"
    assert json.loads(files[f"{cfg}/config.json"])["command"] == (
        "placement-manage db online_data_migrations"
    )
    assert ini(files[f"{cfg}/placement.conf"]).has_section("placement_database")
    late = [rel for rel, data in files.items() if b"online_data_migrations" in data]
    assert late and all(rel.startswith("stages/finish/") for rel in late)
    if name == "site-a":
        assert_finish_after_compute(repo, name)
    else:  # no compute stage: finish follows services
        assert list(bring_up_order(repo, name)[1].items())[-1] == ("finish", ["services"])


def test_registration(repo: Path) -> None:
    files = tree(repo, "pl-a")
    job = doc(files, "stages/register/jobs/placement-ks-register-job.yaml")
    env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    spec = json.loads(env["KKC_REGISTRATION"])
    assert spec["user"] == "placement"
    assert [(s["type"], s["endpoints"]) for s in spec["services"]] == [
        (
            "placement",
            {
                "internal": "http://placement-api.openstack.svc:8780",
                "public": "https://placement.example.com",
            },
        )
    ]


def test_placement_database_and_no_messaging(repo: Path) -> None:
    files = tree(repo, "pl-a")
    conf = ini(files["stages/services/config/placement-api-kolla/placement.conf"])
    assert conf.get("placement_database", "max_retries") == "-1"
    assert conf.get("keystone_authtoken", "service_type") == "placement"
    for section in ("database", "oslo_messaging_rabbit", "oslo_messaging_notifications"):
        assert not conf.has_section(section)
    secret = next(
        s
        for s in service_output(repo, "pl-a", "placement").secrets
        if s.name == "placement-secrets"
    )
    assert {k.key for k in secret.keys} == {
        "database-password",
        "keystone-password",
        "memcache-secret-key",
        "placement.conf",
    }
    drop_in = ini(next(k for k in secret.keys if k.key == "placement.conf").template)
    assert drop_in.get("placement_database", "connection").startswith("mysql+pymysql://placement:")
    assert not drop_in.has_section("database")
    assert not drop_in.has_option("DEFAULT", "transport_url")


@pytest.mark.parametrize("name", ["pl-a", "pl-b"])
def test_uwsgi_on_every_release(repo: Path, name: str) -> None:
    files = tree(repo, name)
    api = json.loads(files["stages/services/config/placement-api-kolla/config.json"])
    assert api["command"] == "uwsgi /etc/placement/placement-api-uwsgi.ini"
    uwsgi = ini(files["stages/services/config/placement-api-kolla/placement-api-uwsgi.ini"])
    assert uwsgi.get("uwsgi", "module") == "placement.wsgi.api:application"
    assert uwsgi.get("uwsgi", "http-socket") == "0.0.0.0:8780"
    assert uwsgi.get("uwsgi", "processes") == "3"


@pytest.mark.parametrize("name", ["pl-a", "pl-b"])
def test_site_builds_and_validates(repo: Path, kkc, name: str) -> None:
    result = kkc(repo, "build", name)
    assert result.exit_code == 0, result.output
