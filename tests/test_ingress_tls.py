"""The ingress and tls overlays (kkc.features): an Ingress for every public endpoint of the
enabled services, in the stage of the Service it fronts, and with tls a cert-manager
Certificate per host whose Secret the Ingress serves; the catalog then says https."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from conftest import PROJECT, Built, snapshot
from helpers import add_site, commit, doc, drop_overlays, minimal, tree, write
from kkc.features.ingress import BACKENDS
from kkc.lint import check_references
from kkc.outputs import compute
from kkc.schema import PUBLIC_HOST_NAMES
from kkc.site import load_site

SITE_A = "sites/site-a/site.yaml"
TLS_BLOCK = "tls:\n  issuer:\n    name: fra1-acme\n"
NGINX = "nginx.ingress.kubernetes.io/"
# site-a's public endpoints: Ingress name -> (stage, host, Service port)
SITE_A_INGRESSES = {
    "keystone-api": ("identity", "identity.fra1.cloud.example.com", 5000),
    "glance-api": ("services", "image.fra1.cloud.example.com", 9292),
    "placement-api": ("services", "placement.fra1.cloud.example.com", 8780),
    "cinder-api": ("services", "volume.fra1.cloud.example.com", 8776),
    "neutron-server": ("services", "network.fra1.cloud.example.com", 9696),
    "nova-api": ("services", "compute.fra1.cloud.example.com", 8774),
    "nova-novncproxy": ("services", "console.fra1.cloud.example.com", 6080),
    "heat-api": ("services", "orchestration.fra1.cloud.example.com", 8004),
    "heat-api-cfn": ("services", "cloudformation.fra1.cloud.example.com", 8000),
    "horizon": ("services", "dashboard.fra1.cloud.example.com", 80),
}


def edit_site_a(root: Path, old: str, new: str) -> None:
    path = root / SITE_A
    text = path.read_text()
    assert old in text, f"{SITE_A} no longer contains {old!r}"
    write(root, SITE_A, text.replace(old, new))
    commit(root, [SITE_A])


def stage_objects(repo: Path, site: str, stage: str, kind: str) -> dict[str, dict]:
    """The objects of ``kind`` in the built stage, as kustomize renders them."""
    out = {}
    for path in sorted((repo / "deploy" / site / "stages" / stage / "objects").glob("*.yaml")):
        obj = yaml.safe_load(path.read_text())
        if obj["kind"] == kind:
            out[obj["metadata"]["name"]] = obj
    return out


@pytest.fixture
def built_a(built_sites: Built) -> tuple[Path, list[dict]]:
    """site-a as committed (overlays: [ingress, tls]), built with the embedded CRD schemas
    (the shared build of conftest.py), and what `kkc render site-a` printed."""
    result = built_sites.builds["site-a"]
    assert result.exit_code == 0, result.output
    assert "not validated" not in result.output  # the Certificates met their CRD schema
    return built_sites.root, built_sites.rendered("site-a")


def test_site_a_uses_the_ingress_and_tls_overlays() -> None:
    site = yaml.safe_load((PROJECT / SITE_A).read_text())
    assert {"ingress", "tls"} <= set(site["overlays"])
    assert TLS_BLOCK in (PROJECT / SITE_A).read_text()


def test_an_ingress_per_public_endpoint_in_the_stage_of_its_service(built_a) -> None:
    repo, _ = built_a
    found = {}
    for stage in ("identity", "services"):
        for name, ing in stage_objects(repo, "site-a", stage, "Ingress").items():
            (rule,) = ing["spec"]["rules"]
            (path,) = rule["http"]["paths"]
            assert path["path"] == "/" and path["pathType"] == "Prefix"
            assert path["backend"]["service"]["name"] == name
            found[name] = (stage, rule["host"], path["backend"]["service"]["port"]["number"])
            assert ing["spec"]["ingressClassName"] == "nginx"
            assert ing["spec"]["tls"] == [
                {"hosts": [rule["host"]], "secretName": f"{name}-public-tls"}
            ]
    assert found == SITE_A_INGRESSES


def test_a_certificate_per_public_host_from_the_site_issuer(built_a) -> None:
    repo, rendered = built_a
    certs = {
        **stage_objects(repo, "site-a", "identity", "Certificate"),
        **stage_objects(repo, "site-a", "services", "Certificate"),
    }
    assert sorted(certs) == sorted(f"{name}-public" for name in SITE_A_INGRESSES)
    assert certs["keystone-api-public"]["spec"] == {
        "secretName": "keystone-api-public-tls",
        "dnsNames": ["identity.fra1.cloud.example.com"],
        "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "fra1-acme"},
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
    }
    for name, (stage, host, _port) in SITE_A_INGRESSES.items():
        assert name + "-public" in stage_objects(repo, "site-a", stage, "Certificate")
        assert certs[f"{name}-public"]["spec"]["dnsNames"] == [host]
    # the built output carries the stage's wave and the namespace like every object
    cert = next(o for o in rendered if o["kind"] == "Certificate" and "keystone" in str(o))
    assert cert["metadata"]["namespace"] == "openstack"
    assert cert["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "20"


def test_ingress_nginx_annotations_per_endpoint(built_a) -> None:
    repo, _ = built_a
    ingresses = stage_objects(repo, "site-a", "services", "Ingress")
    assert ingresses["nova-api"]["metadata"]["annotations"] == {
        NGINX + "proxy-body-size": "8m",
        NGINX + "proxy-connect-timeout": "10",
        NGINX + "proxy-read-timeout": "60",
        NGINX + "proxy-send-timeout": "60",
    }
    assert ingresses["glance-api"]["metadata"]["annotations"] == {
        NGINX + "proxy-body-size": "0",
        NGINX + "proxy-connect-timeout": "10",
        NGINX + "proxy-read-timeout": "21600",
        NGINX + "proxy-request-buffering": "off",
        NGINX + "proxy-send-timeout": "21600",
    }
    novnc = ingresses["nova-novncproxy"]["metadata"]["annotations"]
    assert novnc[NGINX + "proxy-read-timeout"] == novnc[NGINX + "proxy-send-timeout"] == "3600"


def test_public_endpoints_are_https(built_a) -> None:
    repo, _ = built_a
    register = (repo / "deploy/site-a/stages/register/jobs/glance-ks-register-job.yaml").read_text()
    assert "https://image.fra1.cloud.example.com" in register
    assert "http://image." not in register


def test_ingress_without_tls(site_repo: Path, kkc) -> None:
    edit_site_a(site_repo, TLS_BLOCK, "")
    drop_overlays(site_repo, "site-a", "tls")
    result = kkc(site_repo, "build", "site-a")
    assert result.exit_code == 0, result.output
    identity = site_repo / "deploy/site-a/stages/identity"
    assert stage_objects(site_repo, "site-a", "identity", "Certificate") == {}
    ing = stage_objects(site_repo, "site-a", "identity", "Ingress")["keystone-api"]
    assert "tls" not in ing["spec"]
    assert ing["spec"]["rules"][0]["host"] == "identity.fra1.cloud.example.com"
    assert "certificate" not in (identity / "kustomization.yaml").read_text()


def test_site_chooses_the_class_and_the_annotations(site_repo: Path) -> None:
    edit_site_a(
        site_repo,
        TLS_BLOCK,
        TLS_BLOCK
        + "ingress:\n  className: traefik\n  annotations: null\n  endpoints:\n"
        + "    glance: null\n    novncproxy: null\n    horizon:\n      annotations:\n"
        + "        traefik.ingress.kubernetes.io/router.middlewares: openstack-hsts@kubernetescrd\n"
        + "        nginx.ingress.kubernetes.io/auth-secret: not-a-secret-value\n",
    )
    files = tree(site_repo, "site-a")
    keystone = doc(files, "stages/identity/objects/keystone-api-ingress.yaml")
    assert keystone["spec"]["ingressClassName"] == "traefik"
    assert "annotations" not in keystone["metadata"]
    horizon = doc(files, "stages/services/objects/horizon-ingress.yaml")
    assert horizon["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/auth-secret": "not-a-secret-value",
        "traefik.ingress.kubernetes.io/router.middlewares": "openstack-hsts@kubernetescrd",
    }
    glance = doc(files, "stages/services/objects/glance-api-ingress.yaml")
    assert "annotations" not in glance["metadata"]


def test_disabled_services_get_no_ingress(site_repo: Path) -> None:
    add_site(
        site_repo, "lean", minimal("lean", "overlays: [ingress, tls]\ntls: {issuer: {name: ca}}\n")
    )
    files = tree(site_repo, "lean")
    objects = sorted(p for p in files if "/objects/" in p)
    assert objects == [
        "stages/identity/objects/keystone-api-ingress.yaml",
        "stages/identity/objects/keystone-api-public-certificate.yaml",
    ]


def test_features_are_off_by_default(example_trees: Mapping) -> None:
    files = example_trees["site-b"]
    assert not [p for p in files if p.endswith(("-ingress.yaml", "-certificate.yaml"))]


def test_ingress_tls_secret_is_provided_only_by_its_certificate(
    example_repo: Path, example_trees: Mapping
) -> None:
    """KKC307 sees the Ingress's tls Secret, and knows the Certificate provides it."""
    site = load_site(example_repo, "site-a")
    files = example_trees["site-a"]
    objects = [
        yaml.safe_load(data)
        for rel, data in files.items()
        if rel.startswith("stages/identity/objects/")
    ]
    objects.append(
        yaml.safe_load((PROJECT / "base/keystone/identity/keystone-api-service.yaml").read_text())
    )
    outputs = compute(site)
    assert check_references(site, objects, "deploy/site-a", outputs) == []
    without = [o for o in objects if o["kind"] != "Certificate"]
    problems = [str(p) for p in check_references(site, without, "deploy/site-a", outputs)]
    assert problems == [
        "deploy/site-a:1:1: KKC307 Ingress/keystone-api references Secret "
        "'keystone-api-public-tls', which is neither in the output nor provided outside it"
    ]


def test_every_public_endpoint_has_a_backend_service_with_that_port() -> None:
    assert sorted(BACKENDS) == sorted(PUBLIC_HOST_NAMES)
    for endpoint, backend in BACKENDS.items():
        found = list(PROJECT.glob(f"base/*/{backend.stage}/{backend.service}-service.yaml"))
        assert len(found) == 1, endpoint
        service = yaml.safe_load(found[0].read_text())
        assert [p["port"] for p in service["spec"]["ports"]] == [backend.port], endpoint


# --- errors: exit 2, the exact located problem, nothing written ---


def run_bad(kkc, repo: Path, site: str):
    before = snapshot(repo)
    result = kkc(repo, "build", site, "--commit")
    assert snapshot(repo) == before, "a failed build changed the repository"
    assert result.exit_code == 2, result.output
    return result.stderr.splitlines()


def test_tls_needs_the_ingress(site_repo: Path, kkc) -> None:
    add_site(site_repo, "t1", minimal("t1", "overlays: [tls]\ntls: {issuer: {name: ca}}\n"))
    assert run_bad(kkc, site_repo, "t1") == [
        "overlays/tls/defaults.yaml:5:12: KKC145 tls.enabled: TLS is terminated by the "
        "Ingress objects of the public endpoints, and ingress.enabled is false: add the "
        "ingress overlay (overlays: [ingress, tls]) or set ingress.enabled: true"
    ]


def test_tls_needs_an_issuer(site_repo: Path, kkc) -> None:
    edit_site_a(site_repo, TLS_BLOCK, "")
    # site-a has no tls: mapping: the problem is at its first key, below the header comment
    lines = (site_repo / SITE_A).read_text().splitlines()
    first = next(i for i, ln in enumerate(lines, 1) if ln and not ln.startswith("#"))
    assert first > 1
    assert run_bad(kkc, site_repo, "site-a") == [
        f"sites/site-a/site.yaml:{first}:1: KKC113 tls.issuer: tls is enabled and needs "
        "issuer.name: the cert-manager ClusterIssuer that signs the public certificates"
    ]


def test_tls_and_an_http_catalog_disagree(site_repo: Path, kkc) -> None:
    edit_site_a(site_repo, "endpoints:\n  scheme: https\n", "endpoints:\n  scheme: http\n")
    lines = (site_repo / SITE_A).read_text().splitlines()
    line = lines.index("  scheme: http") + 1
    assert run_bad(kkc, site_repo, "site-a") == [
        f'sites/site-a/site.yaml:{line}:11: KKC146 endpoints.scheme: is "http" but tls is '
        "enabled: the Keystone catalog and the services would advertise http:// for "
        "endpoints served over https; set endpoints.scheme: https"
    ]


def test_unknown_endpoint_in_ingress_settings(site_repo: Path, kkc) -> None:
    add_site(
        site_repo,
        "t2",
        minimal("t2", "overlays: [ingress]\ningress:\n  endpoints:\n    glanse: {}\n"),
    )
    assert run_bad(kkc, site_repo, "t2") == [
        'sites/t2/site.yaml:10:13: KKC112 ingress.endpoints.glanse: "glanse" is not allowed '
        "(allowed: cinder, glance, heat, heat-cfn, horizon, keystone, neutron, nova, "
        "novncproxy, placement)"
    ]


def test_kkc_secrets_lists_the_certificate_secrets(site_repo: Path, kkc) -> None:
    result = kkc(site_repo, "secrets", "site-a", "-o", "json")
    assert result.exit_code == 0, result.output
    secrets = {s["name"]: s for s in json.loads(result.stdout)}
    assert secrets["keystone-api-public-tls"] == {
        "name": "keystone-api-public-tls",
        "namespace": "openstack",
        "purpose": "TLS certificate of https://identity.fra1.cloud.example.com "
        "(served by Ingress keystone-api)",
        "source": "created in the cluster by cert-manager (Certificate keystone-api-public)",
        "keys": [
            {
                "key": "tls.crt",
                "description": "certificate chain for identity.fra1.cloud.example.com",
            },
            {"key": "tls.key", "description": "private key"},
        ],
    }
    assert sorted(n for n in secrets if n.endswith("-public-tls")) == sorted(
        f"{name}-public-tls" for name in SITE_A_INGRESSES
    )
