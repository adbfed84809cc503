"""Overlay monitoring: exporters from the release's Kolla images (memcached sidecar,
RabbitMQ's built-in plugin, the blackbox exporter probing every API), PodMonitors and a
ServiceMonitor whose selectors match what kkc renders, labelled for the Prometheus
instance; site-a builds and validates (CRD schemas included) with it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from conftest import Built, make_repo
from helpers import add_site, doc, drop_overlays, minimal, tree
from kkc import kollacheck
from kkc.features.monitoring import BLACKBOX

NAME, COMP = "app.kubernetes.io/name", "app.kubernetes.io/component"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("monitoring") / "repo")
    extra = "overlays: [monitoring]\nmonitoring:\n  labels:\n    prometheus: fra1\n  interval: 1m\n"
    add_site(root, "mon", minimal("mon", extra))
    return root


@pytest.fixture
def files(example_trees: Mapping) -> Mapping[str, bytes]:
    return example_trees["site-a"]


def test_exporter_images_exist_in_every_release() -> None:
    for release in kollacheck.releases():
        images = kollacheck.images(release)
        assert {"prometheus-memcached-exporter", BLACKBOX} <= images, release


def test_memcached_gets_an_exporter_sidecar_and_a_pod_monitor(files: dict[str, bytes]) -> None:
    patch = doc(files, "stages/infra/patches/memcached-statefulset-monitoring.yaml")
    pod = patch["spec"]["template"]["spec"]
    (sidecar,) = pod["containers"]
    assert sidecar["image"] == "kolla/prometheus-memcached-exporter"
    assert sidecar["ports"] == [{"name": "metrics", "containerPort": 9150, "protocol": "TCP"}]
    assert pod["volumes"] == [
        {"name": "exporter-config", "configMap": {"name": "memcached-exporter-kolla"}}
    ]
    config = json.loads(files["stages/infra/config/memcached-exporter-kolla/config.json"])
    assert config["command"] == (
        "/opt/memcached_exporter/memcached_exporter --memcached.address=127.0.0.1:11211"
        " --web.listen-address=:9150"
    )
    monitor = doc(files, "stages/infra/objects/memcached-podmonitor.yaml")
    assert monitor["metadata"] == {
        "name": "memcached",
        "labels": {"release": "kube-prometheus-stack"},
    }
    assert monitor["spec"] == {
        "selector": {"matchLabels": {NAME: "memcached", COMP: "server"}},
        "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s"}],
    }
    # the selector matches the pods of the rendered StatefulSet
    base = yaml.safe_load(
        (
            Path(__file__).parent.parent / "base/memcached/infra/memcached-statefulset.yaml"
        ).read_text()
    )
    labels = base["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_rabbitmq_exposes_its_prometheus_plugin_port(files: dict[str, bytes]) -> None:
    patch = doc(files, "stages/infra/patches/rabbitmq-statefulset-monitoring.yaml")
    assert patch["spec"]["template"]["spec"]["containers"] == [
        {
            "name": "rabbitmq",
            "ports": [{"name": "prometheus", "containerPort": 15692, "protocol": "TCP"}],
        }
    ]
    monitor = doc(files, "stages/infra/objects/rabbitmq-podmonitor.yaml")["spec"]
    assert monitor["selector"] == {"matchLabels": {NAME: "rabbitmq", COMP: "server"}}
    assert monitor["podMetricsEndpoints"][0]["port"] == "prometheus"


def test_blackbox_exporter_probes_every_api_of_the_site(files: dict[str, bytes]) -> None:
    service = doc(files, f"stages/services/objects/{BLACKBOX}-service.yaml")
    monitor = doc(files, "stages/services/objects/openstack-api-servicemonitor.yaml")["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service["spec"]["selector"] == monitor["selector"]["matchLabels"]
    targets = [
        (e["relabelings"][0]["replacement"], e["params"]["target"][0]) for e in monitor["endpoints"]
    ]
    assert targets == [  # each API once, in bring-up order
        ("keystone-api", "http://keystone-api.openstack.svc:5000/v3"),
        ("glance-api", "http://glance-api.openstack.svc:9292"),
        ("placement-api", "http://placement-api.openstack.svc:8780"),
        ("cinder-api", "http://cinder-api.openstack.svc:8776/v3/"),
        ("neutron-server", "http://neutron-server.openstack.svc:9696"),
        ("nova-api", "http://nova-api.openstack.svc:8774/v2.1"),
        ("heat-api", "http://heat-api.openstack.svc:8004/v1/"),
        ("heat-api-cfn", "http://heat-api-cfn.openstack.svc:8000/v1"),
        ("horizon", "http://horizon.openstack.svc:80/"),
    ]
    assert {e["port"] for e in monitor["endpoints"]} == {"metrics"}
    assert {e["params"]["module"][0] for e in monitor["endpoints"]} == {"os_endpoint"}
    deployment = doc(files, f"stages/services/objects/{BLACKBOX}-deployment.yaml")
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert pod["spec"]["containers"][0]["image"] == f"kolla/{BLACKBOX}"
    assert (
        "modules:\n  os_endpoint:"
        in files[f"stages/services/config/{BLACKBOX}-kolla/blackbox.yml"].decode()
    )


def test_site_labels_and_interval_reach_every_monitor(repo: Path) -> None:
    files = tree(repo, "mon")
    for rel in (
        "stages/infra/objects/memcached-podmonitor.yaml",
        "stages/infra/objects/rabbitmq-podmonitor.yaml",
        "stages/services/objects/openstack-api-servicemonitor.yaml",
    ):
        monitor = doc(files, rel)
        assert monitor["metadata"]["labels"] == {
            "prometheus": "fra1",
            "release": "kube-prometheus-stack",
        }, rel
    endpoints = doc(files, "stages/services/objects/openstack-api-servicemonitor.yaml")["spec"]
    assert [e["relabelings"][0]["replacement"] for e in endpoints["endpoints"]] == ["keystone-api"]
    assert {e["interval"] for e in endpoints["endpoints"]} == {"1m"}


def test_without_the_overlay_nothing_is_monitored(site_repo: Path) -> None:
    drop_overlays(site_repo, "site-a", "monitoring", "network-policy")
    files = tree(site_repo, "site-a")
    assert not [p for p in files if "monitor" in p or "networkpolicy" in p or "exporter" in p]


def test_site_a_builds_and_validates_with_the_overlay(built_sites: Built) -> None:
    result = built_sites.builds["site-a"]
    assert result.exit_code == 0, result.output
    site_repo = built_sites.root
    out = site_repo / "deploy/site-a/stages"
    assert (out / "infra/objects/memcached-podmonitor.yaml").is_file()
    assert (out / "services/objects/openstack-api-servicemonitor.yaml").is_file()
