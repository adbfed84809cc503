"""Bring-up order and Job immutability, as the controllers will see the output: every
stage directory builds on its own (what a Flux Kustomization applies), the stages
together are exactly the site (what Argo CD applies), each object carries its stage's
sync wave, and every Job is replaced, not patched, when it changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import EXAMPLE_SITES, Built, make_repo
from helpers import write
from kkc import kustomize
from kkc.build import object_key
from kkc.jobs import JOB_REPLACE
from kkc.services import STAGES
from kkc.yamlio import load_stream

WAVE = "argocd.argoproj.io/sync-wave"
SITES = EXAMPLE_SITES


@pytest.fixture
def built(built_sites: Built) -> Built:
    """site-a and site-b built (the shared build of conftest.py)."""
    for site in SITES:
        assert built_sites.builds[site].exit_code == 0, built_sites.builds[site].output
    return built_sites


def objects(path: Path) -> list[dict]:
    return load_stream(kustomize.build(path, str(path)))


def stage_dirs(built: Built, site: str) -> list[str]:
    """deploy/SITE/stages/STAGE of each stage directory, in stage order."""
    stages = (built.root / "deploy" / site / "stages").iterdir()
    return [
        f"deploy/{site}/stages/{p.name}"
        for p in sorted(stages, key=lambda p: list(STAGES).index(p.name))
    ]


@pytest.mark.parametrize("site", SITES)
def test_each_stage_builds_alone_and_together_they_are_the_site(built: Built, site: str) -> None:
    whole = built.objects(f"deploy/{site}")
    parts: list[dict] = []
    for stage in stage_dirs(built, site):
        stage_objects = built.objects(stage)
        assert stage_objects, stage
        assert {o["metadata"]["labels"]["kkc.openstack.org/stage"] for o in stage_objects} == {
            stage.rpartition("/")[2]
        }
        parts += stage_objects
    assert sorted(map(object_key, parts)) == sorted(map(object_key, whole))
    assert len(set(map(object_key, whole))) == len(whole)


@pytest.mark.parametrize("site", SITES)
def test_sync_waves_follow_the_stage_order(built: Built, site: str) -> None:
    for stage in stage_dirs(built, site):
        wave = str(list(STAGES).index(stage.rpartition("/")[2]) * 10)
        for obj in built.objects(stage):
            assert obj["metadata"]["annotations"][WAVE] == wave, object_key(obj)
            template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
            assert WAVE not in (template.get("annotations") or {}), "a wave must not roll pods"


@pytest.mark.parametrize("site", SITES)
def test_every_job_is_replaced_when_it_changes(built: Built, site: str) -> None:
    jobs = [o for o in built.objects(f"deploy/{site}") if o["kind"] == "Job"]
    assert jobs
    for job in jobs:
        annotations = job["metadata"]["annotations"]
        assert {k: annotations.get(k) for k in JOB_REPLACE} == JOB_REPLACE, job["metadata"]
        assert "argocd.argoproj.io/hook" not in annotations  # no PostSync deadlock
        assert "ttlSecondsAfterFinished" not in job["spec"]  # kept, so never "missing"


def test_keystone_bring_up_order(built: Built) -> None:
    by_stage = {s.rpartition("/")[2]: built.objects(s) for s in stage_dirs(built, "site-a")}
    names = {
        stage: {f"{o['kind']}/{o['metadata']['name']}" for o in objs}
        for stage, objs in by_stage.items()
    }
    assert {"Job/keystone-db-sync", "Job/keystone-keys-setup"} <= names["db"]
    assert "Deployment/keystone-api" in names["identity"]
    assert "StatefulSet/mariadb" in names["infra"]
    job = next(o for o in by_stage["db"] if o["metadata"]["name"] == "keystone-db-sync")
    pod = job["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["db-init", "db-sync"]
    assert [c["name"] for c in pod["containers"]] == ["bootstrap"]
    env = {e["name"]: e.get("value") for e in pod["initContainers"][0]["env"]}
    assert (env["DB_NAME"], env["DB_USER"]) == ("keystone", "keystone")


def test_an_upgrade_changes_the_db_sync_job(tmp_path: Path, kkc) -> None:
    """A new release changes the db-sync and db-finish Jobs' images: the controller must
    re-create them (annotations above) and they run the schema upgrade."""
    repo = make_repo(tmp_path / "repo")
    assert kkc(repo, "build", "site-a").exit_code == 0
    job = repo / "deploy/site-a/stages/db/jobs/keystone-db-sync-job.yaml"
    before = job.read_text()
    site = repo / "sites/site-a/site.yaml"
    write(repo, "sites/site-a/site.yaml", site.read_text().replace('"2025.1"', '"2026.1"'))
    assert kkc(repo, "build", "site-a").exit_code == 0
    rendered = objects(repo / "deploy/site-a/stages/db")
    job_obj = next(o for o in rendered if o["metadata"]["name"] == "keystone-db-sync")
    images = {c["image"] for c in job_obj["spec"]["template"]["spec"]["initContainers"]}
    assert all(i.endswith(":2026.1-rocky-10") for i in images), images
    assert job.read_text() == before  # the Job file is release-independent; images: does it
    # and the contract runs again, last, with the new image
    finish = objects(repo / "deploy/site-a/stages/finish")
    contract = next(o for o in finish if o["metadata"]["name"] == "keystone-db-finish")
    [container] = contract["spec"]["template"]["spec"]["containers"]
    assert container["image"].endswith("/keystone:2026.1-rocky-10")
