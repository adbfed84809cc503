"""Output validation: each rule catches a broken object, with its code and the object named."""

from __future__ import annotations

import copy

import pytest

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
WHERE = "deploy/x/kustomization.yaml:1:1"


def codes(problems) -> list[str]:
    return [p.code for p in problems]


def test_valid_objects_pass(crd_dir: str) -> None:
    assert validate_objects([DEPLOYMENT, EXTERNAL_SECRET], "1.31", crd_dir, "d") == ([], [])


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


def test_custom_resource_checked_against_its_crd(crd_dir: str) -> None:
    obj = copy.deepcopy(EXTERNAL_SECRET)
    obj["spec"]["secretStoreRef"]["kind"] = "Vault"
    obj["spec"]["refreshIntervall"] = "1h"
    problems, _ = validate_objects([obj], "1.31", crd_dir, "d")
    assert codes(problems) == ["KKC302", "KKC302"]
    text = "\n".join(map(str, problems))
    assert (
        "ExternalSecret/s: spec: Additional properties are not allowed ('refreshIntervall'" in text
    )
    assert "ExternalSecret/s: spec.secretStoreRef.kind: 'Vault' is not one of" in text


def test_custom_resource_without_crd_dir_is_a_warning_not_silence() -> None:
    problems, warnings = validate_objects([EXTERNAL_SECRET], "1.31", None, "d")
    assert problems == []
    assert warnings == [
        "warning: external-secrets.io/v1 ExternalSecret objects not validated: no CRD "
        "directory (set KKC_CRD_DIR or --crd-dir)"
    ]


def test_custom_resource_kind_missing_from_crd_dir_is_an_error(crd_dir: str) -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    problems, _ = validate_objects([obj], "1.31", crd_dir, "d")
    assert codes(problems) == ["KKC303"]


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
