"""GitOps: the objects of `kkc bootstrap`, validated against the real CRD schemas, and the
emulated reconcile: what Argo CD or Flux will do with the committed repository, proved
without a cluster. Also: a site removed from the repository leaves no stale output."""

from __future__ import annotations

import graphlib
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import git
import pytest
import yaml
from typer.testing import CliRunner

from conftest import make_repo, snapshot
from helpers import (
    KEYSTONE_SITES,
    add_site,
    commit,
    controller_build,
    crd_yaml,
    expected_stages,
    minimal,
    object_schema,
    set_engine,
    validated_objects,
    write,
)
from kkc import build, gitops, loader, validate
from kkc.build import object_key
from kkc.cli import app
from kkc.generate import render_tree
from kkc.site import load_site

SITES = ("site-a", "site-b")
ENGINES = ("argocd", "flux")
WAVE = "argocd.argoproj.io/sync-wave"


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Path, str]]]:
    """engine -> (a site repository where every example site uses it, built with
    `kkc build --all --commit`, and the commit the controller will see)."""
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
            mp.setenv(key, "kkc test")
        for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
            mp.setenv(key, "test@kkc.invalid")
        mp.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        mp.delenv("KKC_CRD_DIR", raising=False)  # the embedded CRD schemas
        for engine in ENGINES:
            repo = make_repo(tmp_path_factory.mktemp(engine) / "repo")
            for site in SITES:
                set_engine(repo, site, engine)
            commit(repo, [f"sites/{s}/site.yaml" for s in SITES], f"use {engine}")
            mp.chdir(repo)
            result = CliRunner().invoke(app, ["build", "--all", "--commit"])
            assert result.exit_code == 0, result.output
            out[engine] = (repo, git.Repo(repo).head.commit.hexsha)
        yield out


def clone_at(repo: Path, sha: str, dest: Path) -> Path:
    """What the controller fetches: a fresh clone at the committed revision."""
    clone = git.Repo.clone_from(str(repo), str(dest))
    clone.git.checkout(sha)
    assert not clone.is_dirty(untracked_files=True)
    return dest


def bootstrap_json(kkc, cwd: Path, site: str) -> list[dict]:
    result = kkc(cwd, "bootstrap", site, "--output", "json")
    assert result.exit_code == 0, result.output
    # validated against the CRDs: no "not validated" warning; only the notes of the
    # operators a site needs (site-a-ha: mariadb-operator, test_mariadb_operator)
    assert [n for n in result.stderr.splitlines() if not n.startswith("note: ")] == []
    listed = json.loads(result.stdout)
    assert (listed["apiVersion"], listed["kind"]) == ("v1", "List")
    return listed["items"]


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("site", SITES)
def test_emulated_reconcile(repos, engine: str, site: str, kkc, tmp_path: Path) -> None:
    repo, sha = repos[engine]
    clone = clone_at(repo, sha, tmp_path / "clone")
    objects = bootstrap_json(kkc, clone, site)
    committed = yaml.safe_load_all((clone / "deploy" / site / "bootstrap.yaml").read_text())
    assert list(committed) == objects, "deploy/<site>/bootstrap.yaml is stale"
    stages = expected_stages(clone, site)
    assert stages[-2:] == ["compute", "finish"]  # the upgrade's contract Jobs come last
    site_ns = load_site(clone, site).get("namespace")
    version = load_site(clone, site).get("kubernetes.version")
    repo_url = "https://git.example.com/cloud/openstack-sites.git"
    if engine == "argocd":
        project, application = objects
        assert (project["kind"], application["kind"]) == ("AppProject", "Application")
        spec = application["spec"]
        assert spec["project"] == project["metadata"]["name"]
        assert spec["source"] == {
            "repoURL": repo_url,
            "targetRevision": "main",
            "path": f"deploy/{site}",
        }
        assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
        assert "ApplyOutOfSyncOnly=true" in spec["syncPolicy"]["syncOptions"]
        assert project["spec"]["sourceRepos"] == [repo_url]
        allowed_ns = {d["namespace"] for d in project["spec"]["destinations"]}
        allowed_cluster = {
            (r["group"], r["kind"]) for r in project["spec"]["clusterResourceWhitelist"]
        }
        assert allowed_ns == {site_ns}
        applied = controller_build(clone, spec["source"]["path"], version)
        for obj in applied:  # what the AppProject lets the Application sync
            ns = obj["metadata"].get("namespace")
            if ns is None:
                group = obj["apiVersion"].rpartition("/")[0]
                assert (group, obj["kind"]) in allowed_cluster, object_key(obj)
            else:
                assert ns in allowed_ns, object_key(obj)
        # waves: one per stage, in stage order, so Argo CD syncs the stages in order
        waves = {}
        for obj in applied:
            stage = obj["metadata"]["labels"]["kkc.openstack.org/stage"]
            waves.setdefault(stage, set()).add(int(obj["metadata"]["annotations"][WAVE]))
        assert sorted(waves) == sorted(stages), "a stage is missing from the Application"
        assert all(len(w) == 1 for w in waves.values()), "a stage spans several waves"
        wave_of = [waves[s].pop() for s in stages]
        assert wave_of == sorted(set(wave_of)), "waves do not follow the stage order"
    else:
        source, *kustomizations = objects
        assert source["kind"] == "GitRepository"
        assert source["spec"]["url"] == repo_url
        assert source["spec"]["ref"] == {"branch": "main"}
        names = {k["metadata"]["name"]: k for k in kustomizations}
        graph = {}
        applied = []
        for name, k in names.items():
            spec = k["spec"]
            assert k["kind"] == "Kustomization"
            assert spec["sourceRef"] == {
                "kind": "GitRepository",
                "name": source["metadata"]["name"],
            }
            assert k["metadata"]["namespace"] == source["metadata"]["namespace"] == "flux-system"
            assert (spec["prune"], spec["wait"], spec["timeout"]) == (True, True, "30m")
            graph[name] = {d["name"] for d in spec.get("dependsOn", [])}
            assert graph[name] <= set(names), f"{name} depends on an unknown Kustomization"
            assert spec["path"].startswith("./")
            built = controller_build(clone, spec["path"][2:], version)
            stage = Path(spec["path"]).name
            assert {o["metadata"]["labels"]["kkc.openstack.org/stage"] for o in built} == {stage}
            for job in (o for o in built if o["kind"] == "Job"):  # immutable: replaced
                assert job["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/force"] == (
                    "enabled"
                )
            applied += built
        order = list(graphlib.TopologicalSorter(graph).static_order())  # CycleError if cyclic
        assert order == [f"{site}-{s}" for s in stages]
        # a chain: each stage waits for exactly the one before it
        assert [graph[f"{site}-{s}"] for s in stages] == [set()] + [
            {f"{site}-{s}"} for s in stages[:-1]
        ]
    # the objects that hold the data survive the controller objects and their pruning
    kept = [o for o in applied if o["kind"] in ("Namespace", "PersistentVolumeClaim")]
    assert [o["metadata"]["name"] for o in kept if o["kind"] == "Namespace"] == [site_ns]
    if site == "site-b":  # the Glance file store
        assert [o["metadata"]["name"] for o in kept if o["kind"] != "Namespace"] == [
            "glance-images"
        ]
    for obj in kept:
        annotations = obj["metadata"]["annotations"]
        if engine == "argocd":
            assert annotations["argocd.argoproj.io/sync-options"] == "Delete=false", obj
        else:
            assert annotations["kustomize.toolkit.fluxcd.io/prune"] == "disabled", obj
    keys = [object_key(o) for o in applied]
    assert len(keys) == len(set(keys)), "an object is applied twice"
    assert set(keys) == validated_objects(clone, site), "the controller applies other objects"


def test_stage_dependencies_chain_the_present_stages() -> None:
    assert gitops.stage_dependencies(["infra", "db", "services"]) == {
        "infra": [],
        "db": ["infra"],
        "services": ["db"],
    }


def test_bootstrap_prints_a_stream_kubectl_applies(site_repo: Path, kkc) -> None:
    result = kkc(site_repo, "bootstrap", "site-a")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    docs = list(yaml.safe_load_all(result.stdout))
    assert [(d["apiVersion"], d["kind"]) for d in docs] == [
        ("argoproj.io/v1alpha1", "AppProject"),
        ("argoproj.io/v1alpha1", "Application"),
    ]
    as_json = json.loads(kkc(site_repo, "bootstrap", "site-a", "-o", "json").stdout)["items"]
    assert as_json == docs
    assert not (site_repo / "deploy").exists(), "bootstrap without --write wrote something"


def test_bootstrap_validates_flux_objects_without_configuration(
    site_repo: Path, kkc, tmp_path: Path
) -> None:
    result = kkc(site_repo, "bootstrap", "site-b")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # the embedded schemas: no "not validated" warning
    # a cluster whose Kustomization CRD knows only spec.path: its own CRD wins
    crds = tmp_path / "crds"
    spec = {"type": "object", "properties": {"path": {"type": "string"}}}
    kust = crd_yaml("kustomize.toolkit.fluxcd.io", "Kustomization", {"v1": object_schema(spec)})
    write(crds, "kustomizations.yaml", kust)
    result = kkc(site_repo, "bootstrap", "site-b", "--crd-dir", str(crds))
    assert result.exit_code == 3
    assert "KKC302 Kustomization/" in result.stderr
    assert "GitRepository" not in result.stderr  # still the embedded schema, and valid


def test_invalid_bootstrap_object_is_refused(
    site_repo: Path, kkc, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = gitops.bootstrap_objects

    def broken(*args, **kwargs):
        objects = real(*args, **kwargs)
        objects[-1]["spec"]["syncPolicy"]["automated"]["selfHeel"] = True
        return objects

    monkeypatch.setattr(gitops, "bootstrap_objects", broken)
    expected = [
        "deploy/site-a/bootstrap.yaml:1:1: KKC302 Application/site-a: "
        "spec.syncPolicy.automated: Additional properties are not allowed "
        "('selfHeel' was unexpected)"
    ]
    result = kkc(site_repo, "bootstrap", "site-a")
    assert (result.exit_code, result.stdout, result.stderr.splitlines()) == (3, "", expected)
    before = snapshot(site_repo)
    result = kkc(site_repo, "build", "site-a")
    assert (result.exit_code, result.stderr.splitlines()) == (3, expected)
    assert snapshot(site_repo) == before


def test_bootstrap_write_restores_the_file(site_repo: Path, kkc) -> None:
    assert kkc(site_repo, "build", "site-b").exit_code == 0
    target = site_repo / "deploy" / "site-b" / "bootstrap.yaml"
    good = target.read_bytes()
    target.write_text("# edited by hand\n")
    result = kkc(site_repo, "bootstrap", "site-b", "--write")
    assert result.exit_code == 0, result.output
    assert result.stderr == "site-b: deploy/site-b/bootstrap.yaml written\n"
    assert result.stdout.encode() == good == target.read_bytes()


SITE_OPTIONS = """\
gitops:
  engine: {engine}
  repoURL: ssh://git@git.example.com/cloud/deploy.git
  revision: 0123456789abcdef0123456789abcdef01234567
  path: clusters/fra/opt
  namespace: gitops
  project: openstack-fra
  automated: false
  prune: false
  interval: 2m
  timeout: 1h
  secretRef: git-credentials
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_site_options_reach_the_objects(site_repo: Path, engine: str) -> None:
    add_site(site_repo, "opt", minimal("opt", SITE_OPTIONS.format(engine=engine)))
    objects = gitops.bootstrap_objects(load_site(site_repo, "opt"), ["infra", "db"])
    assert validate.validate_objects(objects, "1.31", None, "opt") == ([], [])
    if engine == "argocd":
        project, application = objects
        assert project["metadata"] == {
            "name": "openstack-fra",
            "namespace": "gitops",
            "labels": {"kkc.openstack.org/site": "opt"},
        }
        assert application["spec"]["source"] == {
            "repoURL": "ssh://git@git.example.com/cloud/deploy.git",
            "targetRevision": "0123456789abcdef0123456789abcdef01234567",
            "path": "clusters/fra/opt",
        }
        assert "automated" not in application["spec"]["syncPolicy"]
        return
    source, infra, db = objects
    assert source["spec"]["ref"] == {"commit": "0123456789abcdef0123456789abcdef01234567"}
    assert source["spec"]["interval"] == "2m"
    assert source["spec"]["secretRef"] == {"name": "git-credentials"}
    assert [k["spec"]["path"] for k in (infra, db)] == [
        "./clusters/fra/opt/stages/infra",
        "./clusters/fra/opt/stages/db",
    ]
    assert {
        (k["metadata"]["namespace"], k["spec"]["prune"], k["spec"]["timeout"]) for k in (infra, db)
    } == {("gitops", False, "1h")}


def test_sites_sharing_a_project_bootstrap_one_app_project(site_repo: Path, kkc) -> None:
    """gitops.project in sites/defaults.yaml: site-a and site-b (both on Argo CD) print the
    same AppProject, which admits both namespaces; a Flux site of that project and an Argo
    CD site whose objects live in another namespace (another AppProject) are not in it."""
    path = site_repo / "sites" / "defaults.yaml"
    path.write_text(path.read_text().replace("gitops:\n", "gitops:\n  project: fleet\n", 1))
    set_engine(site_repo, "site-b", "argocd")
    add_site(
        site_repo,
        "fx",
        minimal("fx", "gitops:\n  engine: flux\n").replace(
            "namespace: openstack", "namespace: openstack-fx"
        ),
    )
    add_site(
        site_repo,
        "gx",
        minimal("gx", "gitops:\n  namespace: gitops\n").replace(
            "namespace: openstack", "namespace: openstack-gx"
        ),
    )
    project_a, application_a = bootstrap_json(kkc, site_repo, "site-a")
    project_b, application_b = bootstrap_json(kkc, site_repo, "site-b")
    assert project_a == project_b
    assert project_a["metadata"] == {"name": "fleet", "namespace": "argocd"}
    assert project_a["spec"]["description"] == (
        "OpenStack sites site-a, site-a-ha, site-b, compiled by kkc"
    )
    assert project_a["spec"]["destinations"] == [
        {"server": gitops.IN_CLUSTER, "namespace": ns} for ns in ("openstack", "openstack-lab")
    ]
    assert validate.validate_objects([project_a], "1.31", None, "fleet") == ([], [])
    for application in (application_a, application_b):
        assert application["spec"]["project"] == "fleet"
        assert application["spec"]["destination"] in project_a["spec"]["destinations"]
    project_g, _ = bootstrap_json(kkc, site_repo, "gx")
    assert project_g["metadata"] == {
        "name": "fleet",
        "namespace": "gitops",
        "labels": {"kkc.openstack.org/site": "gx"},
    }
    assert [d["namespace"] for d in project_g["spec"]["destinations"]] == ["openstack-gx"]
    # the committed bootstrap.yaml is the same AppProject
    assert kkc(site_repo, "build", "site-b").exit_code == 0
    committed = list(yaml.safe_load_all((site_repo / "deploy/site-b/bootstrap.yaml").read_text()))
    assert committed[0] == project_a


def test_rendering_reads_nothing_of_the_repository(site_repo: Path, tmp_path: Path) -> None:
    """What site-a's output needs from the repository (the overlay components of each
    stage, the other sites in its AppProject) is found when it loads: rendered again with
    the repository gone, it gives the same bytes."""
    path = site_repo / "sites" / "defaults.yaml"
    path.write_text(path.read_text().replace("gitops:\n", "gitops:\n  project: fleet\n", 1))
    set_engine(site_repo, "site-b", "argocd")
    write(
        site_repo,
        "overlays/ha/services/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n",
    )
    site = load_site(site_repo, "site-a")
    assert [p.name for p in site.project_peers] == ["site-a-ha", "site-b"]
    assert site.overlay_components["services"] == ("overlays/ha/services",)
    tree = render_tree(site)
    shutil.move(site_repo, tmp_path / "elsewhere")
    assert render_tree(site) == tree
    project = next(yaml.safe_load_all(tree["bootstrap.yaml"]))
    assert project["spec"]["description"] == (
        "OpenStack sites site-a, site-a-ha, site-b, compiled by kkc"
    )
    assert (
        "../../../../overlays/ha/services"
        in yaml.safe_load(tree["stages/services/kustomization.yaml"])["components"]
    )


def test_a_site_that_does_not_load_stops_the_shared_project(site_repo: Path, kkc) -> None:
    """The AppProject cannot be computed without every site that may share it."""
    add_site(site_repo, "bad", minimal("bad", "gitops:\n  project: site-a\n  colour: red\n"))
    result = kkc(site_repo, "bootstrap", "site-a")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "sites/bad/site.yaml:9:3: KKC110 gitops.colour: unknown key (allowed: automated, "
        "engine, interval, namespace, path, project, prune, repoURL, revision, secretRef, "
        "selfHeal, timeout)"
    ]


def test_flux_settings_on_an_argo_site_warn(site_repo: Path, kkc) -> None:
    """gitops.secretRef and gitops.interval mean nothing to Argo CD: one warning each, at
    the line that sets it; the objects are those without them."""
    add_site(
        site_repo,
        "argo",
        minimal("argo", "gitops:\n  secretRef: git-credentials\n  interval: 2m\n"),
    )
    result = kkc(site_repo, "bootstrap", "argo")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "warning: sites/argo/site.yaml:8:3: KKC160 gitops.secretRef: ignored with "
        "gitops.engine argocd: Argo CD takes repository credentials from its own repository "
        "Secrets (label argocd.argoproj.io/secret-type: repository in its namespace), never "
        "from an Application",
        "warning: sites/argo/site.yaml:9:3: KKC160 gitops.interval: ignored with "
        "gitops.engine argocd: Argo CD polls every repository at its own interval "
        "(timeout.reconciliation in argocd-cm)",
    ]
    assert "git-credentials" not in result.stdout and "2m" not in result.stdout
    rendered = kkc(site_repo, "render", "argo")
    assert rendered.exit_code == 0, rendered.output
    assert [w for w in rendered.stderr.splitlines() if "KKC160" in w] == (
        result.stderr.splitlines()
    )


# --- a site removed from the repository -------------------------------------------------


def test_removed_site_leaves_no_stale_output(small_site_repo: Path, kkc) -> None:
    assert kkc(small_site_repo, "build", "--all", "--commit").exit_code == 0
    repo = git.Repo(small_site_repo)
    write(small_site_repo, "deploy/site-l/NOTES.md", "kept: kkc does not own this\n")
    write(small_site_repo, "deploy/hand-made/kustomization.yaml", "resources: []\n")
    owned = json.loads((small_site_repo / "deploy/site-l/.kkc-files").read_text())
    repo.git.rm("-q", "sites/site-l/site.yaml")
    repo.git.commit("-q", "-m", "drop site-l")

    # building named sites never removes anything
    result = kkc(small_site_repo, "build", "site-k")
    assert result.exit_code == 0, result.output
    assert (small_site_repo / "deploy/site-l/.kkc-files").is_file()

    result = kkc(small_site_repo, "build", "--all", "--commit")
    assert result.exit_code == 0, result.output
    head = repo.head.commit
    assert result.stdout.splitlines() == [
        "site-k: deploy/site-k/ up to date; nothing to commit",
        f"site-l: removed deploy/site-l/ (the site no longer exists; files: "
        f"{len(owned['files']) + 1} removed; objects: {len(owned['objects'])} removed); "
        f"committed {head.hexsha[:12]}",
    ]
    left = sorted(
        p.relative_to(small_site_repo / "deploy/site-l").as_posix()
        for p in (small_site_repo / "deploy/site-l").rglob("*")
    )
    assert left == ["NOTES.md"]
    assert (small_site_repo / "deploy/hand-made/kustomization.yaml").is_file()
    assert head.message.startswith("kkc: remove site-l\n\nObjects: 0 added, 0 changed, ")
    assert "Site-Digest" not in head.message
    assert [b.path for b in head.tree.traverse() if b.path.startswith("deploy/site-l")] == []
    [parent] = head.parents
    assert {d.a_path for d in parent.diff(head)} == {
        f"deploy/site-l/{p}" for p in [*owned["files"], ".kkc-files"]
    }
    # and a second run finds nothing left to do
    again = kkc(small_site_repo, "build", "--all", "--commit")
    assert again.stdout == "site-k: deploy/site-k/ up to date; nothing to commit\n"


def _one_project(root: Path, letters: str) -> list[str]:
    """site-k and a copy of it per letter (site-<letter>, in namespace openstack-<letter>),
    all in the Argo CD AppProject "fleet" of the fleet defaults; their names."""
    path = root / "sites" / "defaults.yaml"
    text = path.read_text()
    if "  project: fleet\n" not in text:
        path.write_text(text.replace("gitops:\n", "gitops:\n  project: fleet\n", 1))
    site_k = KEYSTONE_SITES["site-k"]
    for c in letters:
        copy = site_k.replace("site-k", f"site-{c}").replace("openstack-k", f"openstack-{c}")
        write(root, f"sites/site-{c}/site.yaml", copy.replace("region: K1", f"region: {c}1"))
    return ["site-k", *(f"site-{c}" for c in letters)]


def test_loading_a_fleet_reads_each_site_a_fixed_number_of_times(
    small_site_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sites that share an AppProject are found through one index per command
    (loader.FleetIndex): each site file is read a fixed number of times however large the
    fleet, not once more per site loaded."""
    reads: Counter = Counter()
    real = loader.load_mapping

    def counting(path: Path, display: str):
        reads[display] += 1
        return real(path, display)

    monkeypatch.setattr(loader, "load_mapping", counting)
    by_size = {}
    for letters in ("mn", "mnopq"):
        argo = _one_project(small_site_repo, letters)
        reads.clear()
        sites = {s.name: s for s in build.load_sites(small_site_repo, [], True)}
        for name in argo:  # each admits all the others; site-l is on Flux
            assert [p.name for p in sites[name].project_peers] == [n for n in argo if n != name]
        by_size[len(argo)] = dict(reads)
    small, large = by_size[3], by_size[6]
    site_files = {d: n for d, n in large.items() if d.endswith("/site.yaml")}
    assert {d: site_files[d] for d in small if d.endswith("/site.yaml")} == {
        d: n for d, n in small.items() if d.endswith("/site.yaml")
    }  # the first sites: no more reads in a larger fleet
    # the fleet defaults: once per load (each site's own, and each Argo CD site's as a peer
    # of the first); the peeks reuse what was read
    assert (small["sites/defaults.yaml"], large["sites/defaults.yaml"]) == (4 + 2, 7 + 5)
    # the first site loaded: its own load; each other Argo CD site: a peek, a load as a
    # peer of the first, its own load; site-l (Flux, loaded last) as no one's peer
    assert site_files == {
        "sites/site-k/site.yaml": 1,
        **{f"sites/site-{c}/site.yaml": 3 for c in "lmnopq" if c != "l"},
        "sites/site-l/site.yaml": 2,
    }
