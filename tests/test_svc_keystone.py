"""Keystone's database Jobs, as kolla-ansible upgrades it: keystone-db-sync (stage db)
expands and migrates the schema through the image's KOLLA_UPGRADE mode and never
contracts, so the old release's API pods keep working while the new ones roll;
keystone-db-finish (stage finish, after compute) contracts through KOLLA_FINISH_UPGRADE.
The modes themselves are checked against Kolla's extend_start.sh in test_kollacheck.py."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from conftest import EXAMPLE_SITES
from helpers import assert_finish_after_compute, doc, finish_step, write
from kkc import kustomize
from kkc.generate import WAVE
from kkc.jobs import JOB_REPLACE
from kkc.yamlio import load_stream

SITES = EXAMPLE_SITES  # site-a, site-b: Argo CD 2025.1 rocky, Flux 2026.1 ubuntu


@pytest.fixture
def repo(example_repo: Path) -> Path:
    return example_repo


@pytest.fixture
def trees(example_trees: Mapping) -> Mapping[str, Mapping[str, bytes]]:
    return example_trees


def env(container: dict) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in container["env"]}


@pytest.mark.parametrize("name", SITES)
def test_db_sync_expands_and_never_contracts(trees: dict, name: str) -> None:
    files = trees[name]
    job = files["stages/db/jobs/keystone-db-sync-job.yaml"]
    pod = doc(files, "stages/db/jobs/keystone-db-sync-job.yaml")["spec"]["template"]["spec"]
    init, [bootstrap] = pod["initContainers"], pod["containers"]
    assert [(c["name"], c["image"]) for c in init] == [
        ("db-init", "kolla/kolla-toolbox"),
        ("db-sync", "kolla/keystone"),
    ]
    # the mode runs in extend_start.sh: it must not be skipped
    assert env(init[1]) == {"KOLLA_CONFIG_STRATEGY": "COPY_ALWAYS", "KOLLA_UPGRADE": ""}
    config = json.loads(files["stages/db/config/keystone-db-sync-kolla/config.json"])
    assert config["command"] == "keystone-manage db_sync --expand"
    assert bootstrap["name"] == "bootstrap"
    assert env(bootstrap)["KOLLA_SKIP_EXTEND_START"] == ""
    # no full db_sync (KOLLA_BOOTSTRAP) and no contract anywhere in stage db
    assert b"KOLLA_BOOTSTRAP" not in job and b"KOLLA_FINISH_UPGRADE" not in job
    assert not [
        r for r, data in files.items() if r.startswith("stages/db/") and b"--contract" in data
    ]
    assert b"--contract" in files["stages/finish/config/keystone-db-contract-kolla/config.json"]


@pytest.mark.parametrize("name", SITES)
def test_bootstrap_reads_the_fernet_key_repository(trees: dict, name: str) -> None:
    """keystone-manage bootstrap loads the fernet token provider, which exits with
    "/etc/keystone/fernet-keys does not exist" when the repository is missing (found by
    the e2e bring-up: the keystone image has no such directory). The keys that
    keystone-keys-setup stores in keystone-fernet-keys are mounted there."""
    files = trees[name]
    pod = doc(files, "stages/db/jobs/keystone-db-sync-job.yaml")["spec"]["template"]["spec"]
    [bootstrap] = pod["containers"]
    mounts = {m["mountPath"]: m for m in bootstrap["volumeMounts"]}
    assert mounts["/etc/keystone/fernet-keys"] == {
        "name": "fernet-keys",
        "mountPath": "/etc/keystone/fernet-keys",
        "readOnly": True,
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["fernet-keys"] == {
        "name": "fernet-keys",
        "secret": {"secretName": "keystone-fernet-keys", "defaultMode": 0o440},
    }
    # only the bootstrap step reads the keys; the schema steps do not wait for them
    for init in pod["initContainers"]:
        assert "fernet-keys" not in {m["name"] for m in init["volumeMounts"]}


@pytest.mark.parametrize("name", SITES)
def test_db_finish_contracts_in_stage_finish_after_compute(
    repo: Path, trees: dict, name: str
) -> None:
    files = trees[name]
    pod, contract = finish_step(files, "keystone")
    assert (contract["name"], contract["image"]) == ("db-contract", "kolla/keystone")
    assert env(contract) == {"KOLLA_CONFIG_STRATEGY": "COPY_ALWAYS", "KOLLA_FINISH_UPGRADE": ""}
    assert {v["name"]: v.get("configMap", v.get("secret")) for v in pod["volumes"]} == {
        "db-contract-config": {"name": "keystone-db-contract-kolla"},
        "kolla-secrets": {"secretName": "keystone-secrets", "defaultMode": 0o440},
        "kolla-logs": None,
    }
    config = json.loads(files["stages/finish/config/keystone-db-contract-kolla/config.json"])
    assert config["command"] == "keystone-manage db_sync --contract"
    assert [f["dest"] for f in config["config_files"]] == [
        "/etc/keystone/keystone.conf",
        "/etc/keystone/keystone.conf.d/50-kkc-secrets.conf",
    ]
    assert_finish_after_compute(repo, name)


def test_finish_stage_builds_alone_and_its_job_is_replaced(trees: dict, tmp_path: Path) -> None:
    """What a Flux Kustomization (or Argo CD's last wave) applies: the Job with the release's
    image, the last wave, and the annotations that re-create it when an upgrade changes it."""
    for rel, data in trees["site-a"].items():
        write(tmp_path, f"deploy/site-a/{rel}", data)
    stage = tmp_path / "deploy/site-a/stages/finish"
    objects = {
        (o["kind"], o["metadata"]["name"]): o
        for o in load_stream(kustomize.build(stage, str(stage)))
    }
    job = objects[("Job", "keystone-db-finish")]
    annotations = job["metadata"]["annotations"]
    assert {k: annotations.get(k) for k in JOB_REPLACE} == JOB_REPLACE
    assert annotations[WAVE] == "60"
    [contract] = job["spec"]["template"]["spec"]["containers"]
    assert contract["image"] == "registry.example.com/kolla/keystone:2025.1-rocky-9"
    [volume] = [v for v in job["spec"]["template"]["spec"]["volumes"] if "configMap" in v]
    assert ("ConfigMap", volume["configMap"]["name"]) in objects  # hash-suffixed, same stage
