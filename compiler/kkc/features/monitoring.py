"""Feature ``monitoring`` (overlay ``monitoring``): prometheus-operator objects for the
control plane, with exporters from the release's Kolla images, as kolla-ansible's
prometheus role runs them.

- memcached: a ``memcached-exporter`` sidecar (prometheus-memcached-exporter) in every
  memcached pod, reading its own memcached on 127.0.0.1; PodMonitor ``memcached``.
- RabbitMQ: the ``rabbitmq_prometheus`` plugin kkc already enables, on port 15692 (the
  port is added to the rabbitmq container); PodMonitor ``rabbitmq``.
- The OpenStack APIs expose no /metrics: Deployment ``prometheus-blackbox-exporter``
  probes the internal endpoint of every enabled API and the ServiceMonitor
  ``openstack-api`` has one endpoint per API (``/probe?module=os_endpoint&target=<url>``,
  label ``api=<service name>``).

Every monitor carries ``monitoring.labels`` (the Prometheus instance's selector). The
network-policy feature lets ``monitoring.namespace`` reach the ports :func:`scrape_targets`
lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..kolla import CONFIG_DIR, KollaConfig
from ..model import Site, rabbitmq_operator
from ..services import PUBLIC_PORTS, ServiceOutput
from ..services.common import KOLLA_SECURITY as _KOLLA_SECURITY
from ..services.common import control_plane_placement, header, keystone_internal
from ..services.common import part_labels as _labels
from ..yamlio import dump

MONITORING_API = "monitoring.coreos.com/v1"
MEMCACHED_EXPORTER_PORT = 9150
RABBITMQ_PROMETHEUS_PORT = 15692
BLACKBOX = "prometheus-blackbox-exporter"
BLACKBOX_PORT = 9115
BLACKBOX_MODULE = "os_endpoint"
# Status codes of a healthy OpenStack API root or versioned endpoint: 200, 300 (version
# discovery) or 401 (authentication required); horizon redirects to its login page.
BLACKBOX_CONFIG = {
    "modules": {
        BLACKBOX_MODULE: {
            "prober": "http",
            "timeout": "5s",
            "http": {"valid_status_codes": [200, 300, 401], "preferred_ip_protocol": "ip4"},
        }
    }
}
_EXPORTER_RESOURCES = {
    "requests": {"cpu": "20m", "memory": "32Mi"},
    "limits": {"cpu": "200m", "memory": "128Mi"},
}


@dataclass(frozen=True)
class ScrapeTarget:
    """Pods Prometheus scrapes: ``name`` names the network policy that lets it in."""

    name: str
    stage: str
    service: str
    component: str
    port: int


def scrape_targets(site: Site) -> list[ScrapeTarget]:
    targets = []
    if site.enabled("memcached"):
        targets.append(
            ScrapeTarget("memcached", "infra", "memcached", "server", MEMCACHED_EXPORTER_PORT)
        )
    if site.enabled("rabbitmq"):
        # the cluster operator's pods carry component rabbitmq (kolla's: server)
        component = "rabbitmq" if rabbitmq_operator(site) else "server"
        targets.append(
            ScrapeTarget("rabbitmq", "infra", "rabbitmq", component, RABBITMQ_PROMETHEUS_PORT)
        )
    targets.append(ScrapeTarget(BLACKBOX, "services", BLACKBOX, "exporter", BLACKBOX_PORT))
    return targets


def api_targets(site: Site, services: list[ServiceOutput]) -> list[tuple[str, str]]:
    """(Service name, internal URL) of every enabled API, in the services' order; once
    each, though a service registers several catalog entries (cinder: block-storage and
    volumev3) for the same URL."""
    out = [("keystone-api", keystone_internal(site) + "/v3")] if site.enabled("keystone") else []
    for o in services:
        if o.registration:
            out += [
                (urlsplit(e.internal).hostname.split(".")[0], e.internal.split("%(")[0])
                for e in o.registration.endpoints
            ]
    if site.enabled("horizon"):
        horizon = PUBLIC_PORTS["horizon"]
        url = f"http://{horizon.service}.{site.get('namespace')}.svc:{horizon.port}/"
        out.append((horizon.service, url))
    return list(dict.fromkeys(out))


def _meta(site: Site, name: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    labels = site.get("monitoring.labels") or {}
    if labels:
        meta["labels"] = dict(sorted(labels.items()))
    return meta


def _pod_monitor(site: Site, name: str, port: str) -> dict[str, Any]:
    target = next(t for t in scrape_targets(site) if t.name == name)
    return {
        "apiVersion": MONITORING_API,
        "kind": "PodMonitor",
        "metadata": _meta(site, target.name),
        "spec": {
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/name": target.service,
                    "app.kubernetes.io/component": target.component,
                }
            },
            "podMetricsEndpoints": [
                {"port": port, "path": "/metrics", "interval": site.get("monitoring.interval")}
            ],
        },
    }


def _exporter_container(name: str, image: str, config: str, port: int) -> dict[str, Any]:
    return {
        "name": name,
        "image": f"kolla/{image}",
        "imagePullPolicy": "IfNotPresent",
        "env": [{"name": "KOLLA_CONFIG_STRATEGY", "value": "COPY_ALWAYS"}],
        "ports": [{"name": "metrics", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/metrics", "port": "metrics"}, "periodSeconds": 30},
        "livenessProbe": {
            "httpGet": {"path": "/metrics", "port": "metrics"},
            "periodSeconds": 60,
            "failureThreshold": 5,
        },
        "resources": _EXPORTER_RESOURCES,
        "securityContext": _KOLLA_SECURITY,
        "volumeMounts": [
            {"name": config, "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "kolla-logs", "mountPath": "/var/log/kolla"},
        ],
    }


def _memcached(site: Site, out: ServiceOutput) -> None:
    image = "prometheus-memcached-exporter"
    cfg = KollaConfig(
        "memcached-exporter-kolla",
        "/opt/memcached_exporter/memcached_exporter --memcached.address=127.0.0.1:11211"
        f" --web.listen-address=:{MEMCACHED_EXPORTER_PORT}",
    )
    container = _exporter_container(
        "memcached-exporter", image, "exporter-config", MEMCACHED_EXPORTER_PORT
    )
    out.images.append(image)
    out.configs.setdefault("infra", []).append(cfg)
    out.patches.setdefault("infra", []).append(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "memcached"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [container],
                        "volumes": [{"name": "exporter-config", "configMap": {"name": cfg.name}}],
                    }
                }
            },
        }
    )
    out.manifests.setdefault("infra", []).append(_pod_monitor(site, "memcached", "metrics"))


def _rabbitmq(site: Site, out: ServiceOutput) -> None:
    """PodMonitor rabbitmq; the kolla StatefulSet gets the port of rabbitmq_prometheus (the
    cluster operator's pods have it already, named prometheus too)."""
    if rabbitmq_operator(site):
        out.manifests.setdefault("infra", []).append(_pod_monitor(site, "rabbitmq", "prometheus"))
        return
    port = {"name": "prometheus", "containerPort": RABBITMQ_PROMETHEUS_PORT, "protocol": "TCP"}
    out.patches.setdefault("infra", []).append(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "rabbitmq"},
            "spec": {"template": {"spec": {"containers": [{"name": "rabbitmq", "ports": [port]}]}}},
        }
    )
    out.manifests.setdefault("infra", []).append(_pod_monitor(site, "rabbitmq", "prometheus"))


def _blackbox(site: Site, services: list[ServiceOutput], out: ServiceOutput) -> None:
    cfg = KollaConfig(
        f"{BLACKBOX}-kolla",
        "/opt/blackbox_exporter/blackbox_exporter --config.file=/etc/prometheus/blackbox.yml"
        f" --web.listen-address=:{BLACKBOX_PORT} --log.level=info",
    )
    cfg.add_file(
        "blackbox.yml",
        f"# {header(site)}\n" + dump(BLACKBOX_CONFIG),
        "/etc/prometheus/blackbox.yml",
        "prometheus",
        "0600",
    )
    labels = _labels(BLACKBOX, "exporter")
    selector = {k: v for k, v in labels.items() if k != "app.kubernetes.io/part-of"}
    pod = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        **control_plane_placement(site),
        "containers": [_exporter_container(BLACKBOX, BLACKBOX, "kolla-config", BLACKBOX_PORT)],
        "volumes": [
            {"name": "kolla-config", "configMap": {"name": cfg.name}},
            {"name": "kolla-logs", "emptyDir": {}},
        ],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": BLACKBOX, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": BLACKBOX, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {
                    "name": "metrics",
                    "port": BLACKBOX_PORT,
                    "targetPort": "metrics",
                    "protocol": "TCP",
                }
            ],
        },
    }
    monitor = {
        "apiVersion": MONITORING_API,
        "kind": "ServiceMonitor",
        "metadata": _meta(site, "openstack-api"),
        "spec": {
            "selector": {"matchLabels": selector},
            "endpoints": [
                {
                    "port": "metrics",
                    "path": "/probe",
                    "interval": site.get("monitoring.interval"),
                    "params": {"module": [BLACKBOX_MODULE], "target": [url]},
                    "relabelings": [
                        {"targetLabel": "api", "replacement": name, "action": "replace"},
                        {"targetLabel": "instance", "replacement": url, "action": "replace"},
                    ],
                }
                for name, url in api_targets(site, services)
            ],
        },
    }
    out.images.append(BLACKBOX)
    out.configs.setdefault("services", []).append(cfg)
    out.manifests.setdefault("services", []).extend([deployment, service, monitor])


def monitoring(site: Site, services: list[ServiceOutput]) -> ServiceOutput:
    out = ServiceOutput("monitoring", [], [])
    if site.enabled("memcached"):
        _memcached(site, out)
    if site.enabled("rabbitmq"):
        _rabbitmq(site, out)
    _blackbox(site, services, out)
    return out
