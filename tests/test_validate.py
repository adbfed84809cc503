"""Output validation: each rule catches a broken object, with its code and the object named."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from helpers import STRICT_EXTERNAL_SECRET_CRD, WIDGET_CRD, write
from kkc import report, validate
from kkc.errors import InputError
from kkc.validate import validate_objects

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "api"},
    "spec": {
        "selector": {"matchLabels": {"app": "api"}},
        "template": {
            "metadata": {"labels": {"app": "api"}},
            "spec": {"containers": [{"name": "api", "image": "quay.io/x/keystone:2025.1-rocky-9"}]},
        },
    },
}
EXTERNAL_SECRET = {
    "apiVersion": "external-secrets.io/v1",
    "kind": "ExternalSecret",
    "metadata": {"name": "s"},
    "spec": {
        "secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault"},
        "target": {"name": "s"},
        "data": [{"secretKey": "password", "remoteRef": {"key": "a/b"}}],
    },
}
WIDGET = {
    "apiVersion": "example.com/v1",
    "kind": "Widget",
    "metadata": {"name": "w"},
    "spec": {"size": 3},
}
WHERE = "deploy/x/kustomization.yaml:1:1"


def codes(problems) -> list[str]:
    return [p.code for p in problems]


def test_valid_objects_pass() -> None:
    assert validate_objects([DEPLOYMENT, EXTERNAL_SECRET], "1.31", None, "d") == ([], [])


def test_unknown_field_is_refused_strictly() -> None:
    obj = copy.deepcopy(DEPLOYMENT)
    obj["spec"]["replica"] = 3
    problems, _ = validate_objects([obj], "1.31", None, "deploy/x/kustomization.yaml")
    assert codes(problems) == ["KKC301"]
    assert str(problems[0]).startswith(f"{WHERE}: KKC301 Deployment/api: spec: ")
    assert "'replica' was unexpected" in str(problems[0])


def test_wrong_type_names_the_field() -> None:
    obj = copy.deepcopy(DEPLOYMENT)
    obj["spec"]["replicas"] = "three"
    problems, _ = validate_objects([obj], "1.31", None, "deploy/x/kustomization.yaml")
    assert [str(p) for p in problems] == [
        f"{WHERE}: KKC301 Deployment/api: spec.replicas: 'three' is not of type 'integer', 'null'"
    ]


def test_kind_removed_in_the_sites_kubernetes_version() -> None:
    obj = {"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"}}
    problems, _ = validate_objects([obj], "1.31", None, "d")
    assert codes(problems) == ["KKC303"]


def test_custom_resource_checked_against_its_embedded_crd() -> None:
    obj = copy.deepcopy(EXTERNAL_SECRET)
    obj["spec"]["secretStoreRef"]["kind"] = "Vault"
    obj["spec"]["refreshIntervall"] = "1h"
    problems, warnings = validate_objects([obj], "1.31", None, "d")
    assert warnings == []
    assert codes(problems) == ["KKC302", "KKC302"]
    text = "\n".join(map(str, problems))
    assert (
        "ExternalSecret/s: spec: Additional properties are not allowed ('refreshIntervall'" in text
    )
    assert "ExternalSecret/s: spec.secretStoreRef.kind: 'Vault' is not one of" in text


def test_custom_resource_no_schema_covers_is_a_warning_not_silence() -> None:
    problems, warnings = validate_objects([WIDGET, WIDGET], "1.31", None, "d")
    assert problems == []
    assert [report.line(w) for w in warnings] == [
        "warning: example.com/v1 Widget objects not validated: kkc embeds no schema for "
        "them (pass --crd-dir DIR with their CRD, or set KKC_CRD_DIR)"
    ]


def test_custom_resource_kind_missing_from_crd_dir_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "es.yaml", STRICT_EXTERNAL_SECRET_CRD)
    problems, warnings = validate_objects([WIDGET], "1.31", str(tmp_path), "d")
    assert warnings == []
    assert [str(p) for p in problems] == [
        "d:1:1: KKC303 Widget/w: no schema for example.com/v1 Widget (Kubernetes 1.31, "
        f"CRDs embedded in kkc, CRDs in {tmp_path})"
    ]


def test_crd_dir_adds_a_kind(tmp_path: Path) -> None:
    write(tmp_path, "widget.yml", WIDGET_CRD)
    assert validate_objects([WIDGET, EXTERNAL_SECRET], "1.31", str(tmp_path), "d") == ([], [])
    small = copy.deepcopy(WIDGET)
    small["spec"] = {"size": 0, "colour": "red"}
    problems, _ = validate_objects([small], "1.31", str(tmp_path), "d")
    assert [str(p) for p in problems] == [
        "d:1:1: KKC302 Widget/w: spec: Additional properties are not allowed "
        "('colour' was unexpected)",
        "d:1:1: KKC302 Widget/w: spec.size: 0 is less than the minimum of 1",
    ]


def test_crd_dir_overrides_the_embedded_schema_of_the_same_kind(tmp_path: Path) -> None:
    # a cluster's own ExternalSecret CRD that requires spec.refreshInterval and has no
    # spec.data: the object the embedded schema accepts now fails, so the directory won
    write(tmp_path, "es.yaml", STRICT_EXTERNAL_SECRET_CRD)
    problems, _ = validate_objects([EXTERNAL_SECRET], "1.31", str(tmp_path), "d")
    assert [str(p) for p in problems] == [
        "d:1:1: KKC302 ExternalSecret/s: spec: 'refreshInterval' is a required property",
        "d:1:1: KKC302 ExternalSecret/s: spec: Additional properties are not allowed "
        "('data' was unexpected)",
    ]
    # the kinds the directory lacks keep their embedded schema
    store = {**EXTERNAL_SECRET, "kind": "SecretStore", "spec": {"bogus": 1}}
    problems, _ = validate_objects([store], "1.31", str(tmp_path), "d")
    assert [str(p) for p in problems] == [
        "d:1:1: KKC302 SecretStore/s: spec: 'provider' is a required property",
        "d:1:1: KKC302 SecretStore/s: spec: Additional properties are not allowed "
        "('bogus' was unexpected)",
    ]
    assert validate_objects([EXTERNAL_SECRET], "1.31", None, "d") == ([], [])


def test_validators_are_built_once_per_kind(tmp_path: Path) -> None:
    write(tmp_path, "widget.yaml", WIDGET_CRD)
    es = validate.crd_validator("external-secrets.io/v1", "ExternalSecret")
    assert es is validate.crd_validator("external-secrets.io/v1", "ExternalSecret")
    assert es is validate.crd_validator("external-secrets.io/v1", "ExternalSecret", str(tmp_path))
    widget = validate.crd_validator("example.com/v1", "Widget", str(tmp_path))
    assert widget is validate.crd_validator("example.com/v1", "Widget", str(tmp_path))
    assert validate.crd_validator("example.com/v1", "Widget") is None
    assert validate.crd_validator("external-secrets.io/v1beta1", "ExternalSecret") is None


def test_every_served_version_of_the_controllers_is_embedded() -> None:
    kinds = {(k["group"], k["version"], k["kind"]) for k in validate.embedded_kinds()}
    assert kinds == {
        ("argoproj.io", "v1alpha1", "Application"),
        ("argoproj.io", "v1alpha1", "AppProject"),
        ("argoproj.io", "v1alpha1", "ApplicationSet"),
        ("source.toolkit.fluxcd.io", "v1", "GitRepository"),
        ("kustomize.toolkit.fluxcd.io", "v1", "Kustomization"),
        ("external-secrets.io", "v1", "ExternalSecret"),
        ("external-secrets.io", "v1", "SecretStore"),
        ("external-secrets.io", "v1", "ClusterSecretStore"),
        ("cert-manager.io", "v1", "Certificate"),
        ("cert-manager.io", "v1", "Issuer"),
        ("cert-manager.io", "v1", "ClusterIssuer"),
        ("monitoring.coreos.com", "v1", "ServiceMonitor"),
        ("monitoring.coreos.com", "v1", "PodMonitor"),
        ("monitoring.coreos.com", "v1", "PrometheusRule"),
        *(
            ("k8s.mariadb.com", "v1alpha1", k)
            for k in ("MariaDB", "Database", "User", "Grant", "Backup", "Restore", "MaxScale")
        ),
        ("rabbitmq.com", "v1beta1", "RabbitmqCluster"),
        *(("rabbitmq.com", "v1beta1", k) for k in ("User", "Vhost", "Permission", "Policy")),
    }
    for k in validate.embedded_kinds():  # each names where its schema came from
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", k["source"]["repository"]), k
        assert re.fullmatch(r"[0-9a-f]{40}", k["source"]["commit"]), k
    sources = {k["kind"]: k["source"] for k in validate.embedded_kinds()}
    assert sources["ServiceMonitor"] == {
        "repository": "prometheus-operator/prometheus-operator",
        "commit": "6adcebc5076c34f4f55f8f5f7b1e528929373ac7",
        "version": "0.93.0",
    }


def test_a_crd_directory_without_crds_is_kkc171(tmp_path: Path) -> None:
    write(tmp_path, "notes.yaml", "just: notes\n")
    with pytest.raises(InputError) as exc:
        validate.check_crd_dir(str(tmp_path))
    assert [str(p) for p in exc.value.problems] == [
        f"<command line>:1:1: KKC171 CRD directory {tmp_path} (--crd-dir or KKC_CRD_DIR) "
        "has no CustomResourceDefinition (in *.yaml or *.yml files)"
    ]
    assert validate.check_crd_dir(None) == ""  # none given: the embedded schemas only


def test_literal_secret_is_refused_without_echoing_it() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "stringData": {"password": "hunter2"},
    }
    problems, _ = validate_objects([obj], "1.31", None, "d")
    assert codes(problems) == ["KKC305"]
    assert "hunter2" not in str(problems)


@pytest.mark.parametrize("image", ["kolla/keystone", "registry:5000/kolla/keystone"])
def test_untagged_image_is_refused(image: str) -> None:
    obj = copy.deepcopy(DEPLOYMENT)
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = image
    problems, _ = validate_objects([obj], "1.31", None, "d")
    assert [str(p) for p in problems] == [
        f"d:1:1: KKC306 Deployment/api: image '{image}' has no tag or digest"
    ]


def test_object_without_name_is_refused() -> None:
    problems, _ = validate_objects([{"apiVersion": "v1", "kind": "ConfigMap"}], "1.31", None, "d")
    assert codes(problems) == ["KKC304"]
