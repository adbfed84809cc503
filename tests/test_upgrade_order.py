"""The rendered output orders an upgrade as kolla-ansible's `upgrade` does, on both
controllers: checked on the example sites (site-a on Argo CD, site-b on Flux) from what
`kkc render` prints and the bootstrap objects, not from kkc's own stage list.

kolla-ansible (ansible/site.yml, roles/*/tasks/upgrade.yml): mariadb -> memcached ->
rabbitmq -> keystone -> glance -> cinder -> placement -> openvswitch -> ovn -> nova ->
neutron -> heat -> horizon; per service the schema Jobs (expand/migrate) before its
workloads roll, contract and online data migrations after; nova's computes last."""

from __future__ import annotations

from pathlib import Path

import pytest

from kkc.yamlio import load_stream

KA_ORDER = (
    "mariadb memcached rabbitmq keystone glance cinder placement openvswitch ovn nova "
    "neutron heat horizon"
).split()
ROLLING = ("Deployment", "StatefulSet", "DaemonSet")
STAGE = "kkc.openstack.org/stage"
WAVE = "argocd.argoproj.io/sync-wave"
# Deliberate deviations, with the reason: the OVN databases and northd come up with the
# other infrastructure (stage infra) because neutron-server's schema Job and the node
# agents need them; they do not depend on keystone or the services kolla-ansible upgrades
# between, so rolling them earlier reorders no dependency.
EARLIER_ON_PURPOSE = {"ovn": "infra"}
# The node agents (DaemonSets: Open vSwitch, ovn-controller, nova-compute, libvirt, the
# OVN metadata agent) roll together in stage compute, after every control-plane service:
# kolla-ansible rolls openvswitch and ovn before nova's control plane. The control plane
# does not use them; what matters on a node, Open vSwitch no later than nova-compute, holds
# (test_node_agents_roll_no_later_than_nova_compute).


def _service(obj: dict) -> str:
    name = obj["metadata"]["name"]
    labels = obj["metadata"].get("labels", {})
    svc = labels.get("app.kubernetes.io/name", name.split("-")[0])
    return (
        "openvswitch"
        if name.startswith("openvswitch")
        else "ovn"
        if name.startswith("ovn")
        else svc
    )


def _positions(root: Path, site: str, objects: list[dict]) -> dict[str, int]:
    """Stage -> its place in the controller's order: Argo CD sync waves, or the Flux
    Kustomizations' dependsOn chain in bootstrap.yaml."""
    boot = load_stream((root / "deploy" / site / "bootstrap.yaml").read_text())
    flux = [o for o in boot if o["kind"] == "Kustomization"]
    if not flux:
        return {
            o["metadata"]["labels"][STAGE]: int(o["metadata"]["annotations"][WAVE])
            for o in objects
            if STAGE in o["metadata"].get("labels", {})
        }
    after = {
        k["metadata"]["name"]: [d["name"] for d in k["spec"].get("dependsOn", [])] for k in flux
    }
    depth: dict[str, int] = {}

    def level(name: str) -> int:
        if name not in depth:
            depth[name] = 1 + max((level(d) for d in after[name]), default=-1)
        return depth[name]

    return {k["spec"]["path"].rsplit("/", 1)[1]: level(k["metadata"]["name"]) for k in flux}


@pytest.fixture(params=["site-a", "site-b"])
def ordered(request, built_sites):
    site = request.param
    objects = built_sites.rendered(site)
    pos = _positions(built_sites.root, site, objects)
    at = lambda o: pos[o["metadata"]["labels"][STAGE]]  # noqa: E731
    return site, objects, at


def test_schema_jobs_before_the_roll_and_finish_after(ordered):
    _site, objects, at = ordered
    jobs = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Job"}
    checked = 0
    for name, job in jobs.items():
        svc = name.split("-")[0]
        rolls = [at(o) for o in objects if o["kind"] in ROLLING and _service(o) == svc]
        if not rolls:
            continue
        if name.endswith("-db-sync"):
            assert at(job) < min(rolls), name
            checked += 1
        if name.endswith("-db-finish"):
            assert at(job) > max(rolls), name
            checked += 1
    assert checked >= 4


def test_keystone_expand_before_roll_contract_after(ordered):
    _site, objects, at = ordered
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    sync, finish = by_name[("Job", "keystone-db-sync")], by_name[("Job", "keystone-db-finish")]
    api = by_name[("Deployment", "keystone-api")]
    commands = str(sync) + str(finish)
    assert "KOLLA_UPGRADE" in str(sync) and "KOLLA_FINISH_UPGRADE" in str(finish), commands
    assert at(sync) < at(api) < at(finish)


def test_services_roll_in_kolla_ansible_order(ordered):
    _site, objects, at = ordered
    first: dict[str, int] = {}
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet") and _service(o) in KA_ORDER:
            first[_service(o)] = min(first.get(_service(o), 99), at(o))
    present = [s for s in KA_ORDER if s in first and s not in EARLIER_ON_PURPOSE]
    for i, svc in enumerate(present):
        for later in present[i + 1 :]:
            assert first[later] >= first[svc], f"{later} rolls before {svc}"
    infra = {o["metadata"]["labels"][STAGE]: at(o) for o in objects}["infra"]
    for svc, stage in EARLIER_ON_PURPOSE.items():
        if svc in first:
            assert first[svc] == infra == min(first.values()), stage


def test_node_agents_roll_no_later_than_nova_compute(ordered):
    _site, objects, at = ordered
    daemons = {o["metadata"]["name"]: at(o) for o in objects if o["kind"] == "DaemonSet"}
    assert {"openvswitch-vswitchd", "ovn-controller", "nova-compute"} <= set(daemons)
    assert daemons["openvswitch-vswitchd"] <= daemons["nova-compute"]
    assert daemons["ovn-controller"] <= daemons["nova-compute"]


def test_computes_roll_last(ordered):
    _site, objects, at = ordered
    nova = [o for o in objects if o["kind"] in ROLLING and _service(o) == "nova"]
    computes = [o for o in nova if o["metadata"]["name"] == "nova-compute"]
    assert computes
    rolls = [at(o) for o in objects if o["kind"] in ROLLING]
    assert at(computes[0]) == max(rolls)
    assert all(
        at(o) < at(computes[0]) for o in nova if o not in computes and o["kind"] != "DaemonSet"
    )


def test_nova_status_upgrade_check_gates_the_nova_roll(ordered):
    """kolla-ansible runs `nova-status upgrade check` with the new code before nova's
    migrations and fails the upgrade on an exit code other than 0 and 1. kkc runs it as
    the first step after the databases exist in nova's schema Job: a failing check fails the
    Job, so nova's migrations, its control plane and the computes wait."""
    _site, objects, at = ordered
    job = next(o for o in objects if o["kind"] == "Job" and o["metadata"]["name"] == "nova-db-sync")
    pod = job["spec"]["template"]["spec"]
    steps = [c["name"] for c in pod["initContainers"] + pod["containers"]]
    assert steps[:3] == ["db-init", "upgrade-check", "api-db-sync"], steps
    check = pod["initContainers"][1]
    assert check["image"].split("/")[-1].startswith("nova-api:"), check["image"]
    mount = next(
        m for m in check["volumeMounts"] if m["mountPath"] == "/var/lib/kolla/config_files"
    )
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    config = next(
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == volume["configMap"]["name"]
    )
    assert "/etc/nova/kkc-upgrade-check.sh" in config["data"]["config.json"]
    script = config["data"]["kkc-upgrade-check.sh"]
    assert "nova-status upgrade check" in script and "(( rc > 1 ))" in script
    # the secret drop-in with [placement] and [api_database] credentials is mounted
    assert any(m["mountPath"] == "/var/lib/kolla/secret_files" for m in check["volumeMounts"])
    nova = [o for o in objects if o["kind"] in ROLLING and _service(o) == "nova"]
    assert nova and all(at(job) < at(o) for o in nova)


def test_rabbitmq_enables_every_feature_flag_before_its_pod_stops(ordered):
    """RabbitMQ refuses to start a new version on data that lacks a feature flag the new
    version requires: the old pod enables them all in its preStop hook, before the roll
    to the new image stops it (make e2e runs the hook against the real server)."""
    _site, objects, _at = ordered
    sts = next(
        o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "rabbitmq"
    )
    pod = sts["spec"]["template"]["spec"]
    main = next(c for c in pod["containers"] if c["name"] == "rabbitmq")
    assert main["lifecycle"]["preStop"]["exec"]["command"] == [
        "rabbitmqctl", "-q", "enable_feature_flag", "all"
    ]  # fmt: skip
    assert pod["terminationGracePeriodSeconds"] >= 60
