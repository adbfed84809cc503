"""`kkc bootstrap --applicationset`: one Argo CD ApplicationSet over the sites of a
repository. The generator is expanded here the way Argo CD does it (list elements into the
Go-templated Application, then templatePatch merged in), and every generated Application
must equal the site's own Application from `kkc bootstrap SITE`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import add_site, crd_yaml, minimal, object_schema, write
from kkc import gitops, validate
from kkc.site import load_site
from test_gitops import bootstrap_json, set_engine

PLACEHOLDER = re.compile(r"\{\{\.(\w+)\}\}")  # goTemplate: {{.key}}
TO_JSON = re.compile(r"\{\{ toJson \.(\w+) \}\}")  # sprig's toJson, in templatePatch

OTHER_REPO = """\
gitops:
  repoURL: ssh://git@git.example.com/cloud/deploy.git
  revision: 0123456789abcdef0123456789abcdef01234567
  path: clusters/fra/opt
  project: openstack-fra
  automated: false
"""


def _fill(node: Any, element: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        return {k: _fill(v, element) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, element) for v in node]
    if isinstance(node, str):  # missingkey=error: a KeyError here
        return PLACEHOLDER.sub(lambda m: element[m.group(1)], node)
    return node


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def expand(appset: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Application name -> the Application the ApplicationSet controller creates."""
    spec = appset["spec"]
    assert spec["goTemplate"] is True
    assert "missingkey=error" in spec["goTemplateOptions"]
    [generator] = spec["generators"]
    out = {}
    for element in generator["list"]["elements"]:
        app = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application"}
        app.update(_fill(spec["template"], element))
        app["metadata"]["namespace"] = appset["metadata"]["namespace"]  # its own namespace
        patch = TO_JSON.sub(lambda m, el=element: json.dumps(el[m.group(1)]), spec["templatePatch"])
        assert "{{" not in patch, f"templatePatch uses more than toJson: {patch}"
        _merge(app, yaml.safe_load(patch))
        out[app["metadata"]["name"]] = app
    return out


def fleet(kkc, cwd: Path, *args: str) -> tuple[list[dict], dict, str]:
    """(AppProjects, the ApplicationSet, stderr) of `kkc bootstrap --applicationset`."""
    result = kkc(cwd, "bootstrap", "--applicationset", *args, "-o", "json")
    assert result.exit_code == 0, result.output
    *projects, appset = json.loads(result.stdout)["items"]
    as_yaml = kkc(cwd, "bootstrap", "--applicationset", *args)
    assert list(yaml.safe_load_all(as_yaml.stdout)) == [*projects, appset]
    assert not re.search(r"[&*]id\d", as_yaml.stdout), "YAML anchors in the stream"
    assert {p["kind"] for p in projects} == {"AppProject"}
    assert appset["kind"] == "ApplicationSet"
    return projects, appset, result.stderr


def test_generated_applications_equal_the_per_site_ones(site_repo: Path, kkc) -> None:
    """site-a and site-b on Argo CD, and a third site in another repository at a pinned
    commit, with its own path, project and manual sync: one ApplicationSet carries them all,
    since every element has its own repoURL and revision."""
    assert validate.crd_validator("argoproj.io/v1alpha1", "ApplicationSet") is not None
    set_engine(site_repo, "site-b", "argocd")
    add_site(site_repo, "opt", minimal("opt", OTHER_REPO))
    projects, appset, stderr = fleet(kkc, site_repo)
    # validated against the CRDs, no site left out; the operator site-a-ha needs is named
    assert stderr.splitlines() == [
        f"note: site-a-ha: install first: {need}"
        for need in gitops.prerequisites(load_site(site_repo, "site-a-ha"))
    ]
    assert appset["metadata"] == {"name": "openstack-sites", "namespace": "argocd"}
    assert appset["spec"]["syncPolicy"] == {"preserveResourcesOnDeletion": True}
    generated = expand(appset)
    assert sorted(generated) == ["opt", "site-a", "site-a-ha", "site-b"]
    for site, application in generated.items():
        own_project, own_application = bootstrap_json(kkc, site_repo, site)
        assert application == own_application, site
        assert own_project in projects, site
    assert len(projects) == 4
    revisions = {a["spec"]["source"]["targetRevision"] for a in generated.values()}
    assert revisions == {"main", "0123456789abcdef0123456789abcdef01234567"}
    assert "automated" not in generated["opt"]["spec"]["syncPolicy"]


def test_named_sites_only(site_repo: Path, kkc) -> None:
    set_engine(site_repo, "site-b", "argocd")
    projects, appset, _ = fleet(kkc, site_repo, "site-b")
    assert list(expand(appset)) == ["site-b"]
    assert [p["metadata"]["name"] for p in projects] == ["site-b"]


def test_flux_sites_are_left_out_with_a_note(site_repo: Path, kkc) -> None:
    projects, appset, stderr = fleet(kkc, site_repo, "--all")
    assert stderr.splitlines() == [
        "note: site-b uses gitops.engine flux: not in the ApplicationSet "
        "(kkc bootstrap site-b prints its objects)",
        *(
            f"note: site-a-ha: install first: {need}"
            for need in gitops.prerequisites(load_site(site_repo, "site-a-ha"))
        ),
    ]
    assert list(expand(appset)) == ["site-a", "site-a-ha"]
    assert [p["metadata"]["name"] for p in projects] == ["site-a", "site-a-ha"]


def test_sites_sharing_a_project_get_one_that_admits_both(site_repo: Path, kkc) -> None:
    add_site(site_repo, "x1", minimal("x1", "gitops:\n  project: openstack\n"))
    text = minimal("x2", "gitops:\n  project: openstack\n").replace(
        "namespace: openstack", "namespace: openstack-x2"
    )
    add_site(site_repo, "x2", text)
    projects, appset, _ = fleet(kkc, site_repo, "x1", "x2")
    [project] = projects
    assert project["metadata"] == {"name": "openstack", "namespace": "argocd"}
    assert project["spec"]["description"] == "OpenStack sites x1, x2, compiled by kkc"
    assert project["spec"]["destinations"] == [
        {"server": gitops.IN_CLUSTER, "namespace": ns} for ns in ("openstack", "openstack-x2")
    ]
    for site, application in expand(appset).items():
        assert application == bootstrap_json(kkc, site_repo, site)[1]
        assert application["spec"]["project"] == "openstack"
        assert application["spec"]["destination"] in project["spec"]["destinations"]
        assert application["spec"]["source"]["repoURL"] in project["spec"]["sourceRepos"]
    # an ApplicationSet over x1 alone still applies the AppProject x2 shares
    only_x1, _, _ = fleet(kkc, site_repo, "x1")
    assert only_x1 == [project]


def test_sites_in_different_argo_namespaces_are_refused(site_repo: Path, kkc) -> None:
    """The site that differs from the namespace most sites use is named, at the line that
    sets it."""
    set_engine(site_repo, "site-b", "argocd")
    add_site(site_repo, "opt", minimal("opt", "gitops:\n  namespace: gitops\n"))
    result = kkc(site_repo, "bootstrap", "--applicationset")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "sites/opt/site.yaml:8:14: KKC161 gitops.namespace: opt puts its Argo CD objects in "
        '"gitops" but site-a in "argocd"; one ApplicationSet creates all its Applications in '
        "its own namespace: give the sites one gitops.namespace, or name the sites of one "
        "namespace"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "name one site, or pass --applicationset for several"),
        (("site-a", "site-b"), "name one site, or pass --applicationset for several"),
        (("--all",), "name one site, or pass --applicationset for several"),
        (
            ("--applicationset", "--write"),
            "--write writes one site's deploy/SITE/bootstrap.yaml; redirect the "
            "ApplicationSet to a file instead",
        ),
        (
            ("--applicationset", "--name", "Fleet"),
            '--name "Fleet" is not a DNS-1123 label (lowercase letters, digits and "-", '
            "at most 63 characters)",
        ),
        (
            ("--applicationset", "site-b"),
            "no Argo CD site to put in an ApplicationSet (gitops.engine is flux for site-b); "
            "use kkc bootstrap SITE",
        ),
    ],
)
def test_usage_errors(site_repo: Path, kkc, args: tuple[str, ...], message: str) -> None:
    result = kkc(site_repo, "bootstrap", *args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == f"kkc bootstrap: {message}"
    assert not (site_repo / "deploy").exists()


def test_validated_against_the_embedded_schemas_without_configuration(
    site_repo: Path, kkc, tmp_path: Path
) -> None:
    result = kkc(site_repo, "bootstrap", "--applicationset", "site-a")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # no "not validated" warning
    # a cluster whose ApplicationSet CRD requires a field kkc does not set: its CRD wins
    crds = tmp_path / "crds"
    spec = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    strict = object_schema({**spec, "required": ["strategy"]}, ["spec"])
    write(crds, "appset.yaml", crd_yaml("argoproj.io", "ApplicationSet", {"v1alpha1": strict}))
    result = kkc(site_repo, "bootstrap", "--applicationset", "site-a", "--crd-dir", str(crds))
    assert result.exit_code == 3
    assert "KKC302 ApplicationSet/" in result.stderr
    assert "spec: 'strategy' is a required property" in result.stderr


def test_invalid_applicationset_is_refused(
    site_repo: Path, kkc, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = gitops.applicationset

    def broken(*args, **kwargs):
        objects = real(*args, **kwargs)
        objects[-1]["spec"]["syncPolicy"]["preserveResourcesOnDelete"] = True
        return objects

    monkeypatch.setattr(gitops, "applicationset", broken)
    result = kkc(site_repo, "bootstrap", "--applicationset", "site-a", "--name", "fleet")
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr.splitlines() == [
        "<kkc bootstrap --applicationset>:1:1: KKC302 ApplicationSet/fleet: spec.syncPolicy: "
        "Additional properties are not allowed ('preserveResourcesOnDelete' was unexpected)"
    ]
