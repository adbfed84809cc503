"""`kkc build SITE --repo PATH [--branch NAME] --commit [--push]`: a separate deploy
repository that builds on its own, holds copies of exactly the bases the sites use, and
is pushed to a (local, bare) remote; a rejected push is exit 4 and loses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path, PurePosixPath

import git
import pytest
import yaml

from conftest import snapshot
from helpers import commit, controller_build, expected_stages, set_engine, validated_objects, write
from kkc import __version__, kustomize
from kkc.build import object_key
from kkc.gitrepo import same_repository
from kkc.site import load_site

SOURCE_URL = "https://git.example.com/cloud/openstack-sites.git"
# what the controller reads: the deploy repository's origin; kkc pushes to the bare
# repository of the test (origin's push URL)
DEPLOY_URL = "https://git.example.com/cloud/openstack-deploy.git"
GENERATED = [
    "# kkc: begin. Generated: the copies of base/ and overlays/ and their manifest",
    "/base/** linguist-generated=true gitlab-generated",
    "/overlays/** linguist-generated=true gitlab-generated",
    "/.kkc-copies linguist-generated=true gitlab-generated",
    "# kkc: end",
]
# every base directory site-b (no Cinder, Heat or Horizon) uses, transitively
SITE_B_BASES = [
    "base/common/db",
    "base/common/register",
    "base/glance/services",
    "base/keystone/db",
    "base/keystone/identity",
    "base/mariadb/infra",
    "base/memcached/infra",
    "base/neutron/compute",
    "base/neutron/infra",
    "base/neutron/services",
    "base/nova/compute",
    "base/nova/services",
    "base/openvswitch/compute",  # through base/neutron/compute
    "base/ovn/compute",  # through base/neutron/compute
    "base/ovn/infra",  # through base/neutron/infra
    "base/placement/services",
    "base/rabbitmq/infra",
]


def as_source(repo: Path) -> Path:
    # credentials in the origin URL must never reach the deploy repository
    git.Repo(repo).create_remote("origin", SOURCE_URL.replace("://", "://bot:s3cr3t@"))
    set_repo_url(repo, DEPLOY_URL)  # as the README says: the deploy repository
    commit(repo, ["sites/defaults.yaml"], "the controller reads the deploy repository")
    return repo


@pytest.fixture
def source(site_repo: Path) -> Path:
    return as_source(site_repo)


@pytest.fixture
def small_source(small_site_repo: Path) -> Path:
    """As ``source``, with the keystone-only sites: for the tests of the deploy-repository
    mechanisms (push, branch, errors, check, diff), which site-b's size only slows down."""
    return as_source(small_site_repo)


def set_repo_url(root: Path, url: str) -> None:
    """sites/defaults.yaml sets gitops.repoURL (line 16) for every example site."""
    path = root / "sites" / "defaults.yaml"
    text = path.read_text()
    assert text.splitlines()[15].startswith("  repoURL: ")
    path.write_text(text.replace(text.splitlines()[15], f"  repoURL: {url}", 1))


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    path = tmp_path / "remote.git"
    git.Repo.init(path, bare=True, initial_branch="main")
    return path


@pytest.fixture
def deploy(tmp_path: Path, remote: Path) -> Path:
    path = tmp_path / "deploy"
    repo = git.Repo.clone_from(remote, path)
    write(path, "README.md", "deploy repository\n")
    commit(path, ["README.md"], "start")
    repo.git.push("origin", "HEAD:refs/heads/main")
    repo.heads.main.set_tracking_branch(repo.remotes.origin.refs.main)
    repo.git.remote("set-url", "origin", DEPLOY_URL)
    repo.git.remote("set-url", "--push", "origin", str(remote))
    return path


def build(kkc, src: Path, dest: Path, *args: str):
    return kkc(src, "build", *args, "--repo", str(dest))


def copied_dirs(dest: Path) -> list[str]:
    doc = json.loads((dest / ".kkc-copies").read_text())
    return sorted({p.rsplit("/", 1)[0] for p in doc["files"] if p.count("/") == 3})


def test_deploy_repository_builds_on_its_own(source: Path, deploy: Path, kkc) -> None:
    repo = git.Repo(deploy)
    write(deploy, ".gitattributes", "*.md text\n")
    commit(deploy, [".gitattributes"], "attributes")
    start = repo.head.commit
    result = build(kkc, source, deploy, "site-b", "--commit")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # gitops.repoURL is the deploy repository: no KKC162
    copies_line, site_line = result.stdout.splitlines()
    assert copies_line.startswith(f"{deploy} (branch main): base/ and overlays/ copies: ")
    assert site_line.startswith("site-b: wrote deploy/site-b/ (files: ")

    # exactly the used bases, as byte copies; nothing of the unused ones
    assert copied_dirs(deploy) == SITE_B_BASES
    for rel in json.loads((deploy / ".kkc-copies").read_text())["files"]:
        assert (deploy / rel).read_bytes() == (source / rel).read_bytes()
    assert sorted(p.name for p in (deploy / "base").iterdir()) == sorted(
        {d.split("/")[1] for d in SITE_B_BASES}
    )
    assert not (source / "deploy").exists()  # the site repository is left alone

    # a clone of the pushed-less repository at the new commit builds, and gives exactly
    # what `kkc render` gives in the site repository
    clone = deploy.parent / "clone"
    git.Repo.clone_from(deploy, clone)
    built = kustomize.build(clone / "deploy" / "site-b", "site-b")
    rendered = kkc(source, "render", "site-b")
    assert rendered.exit_code == 0, rendered.output
    assert built == rendered.stdout

    # one commit for the copies, then one for the site, with the source in the trailers
    site_commit, copies_commit = repo.head.commit, repo.head.commit.parents[0]
    assert copies_commit.parents == (start,)
    source_sha = git.Repo(source).head.commit.hexsha
    count = sum(1 for d in SITE_B_BASES for p in (source / d).rglob("*") if p.is_file())
    assert copies_commit.message.startswith(
        f"kkc: update base/ and overlays/ copies\n\nFiles: {count} added, 0 changed, 0 removed\n"
        "  added: base/common/db/kustomization.yaml\n"
    )
    trailers = (
        f"\nSource-Commit: {source_sha}\nSource-Repository: {SOURCE_URL}\n"
        f"Kkc-Version: {__version__}\n"
    )
    assert copies_commit.message.endswith(trailers)
    digest = load_site(source, "site-b").digest
    assert site_commit.message.startswith("kkc: build site-b\n\nObjects: ")
    assert site_commit.message.endswith(f"{trailers}Site-Digest: sha256:{digest}\n")
    assert repo.is_dirty(untracked_files=True) is False

    # provenance: source repository (no credentials) and commit, engine version
    readme = (deploy / "deploy" / "site-b" / "README.md").read_text()
    engine = kustomize.find_engine().version
    assert f"- Source: `{SOURCE_URL}`, commit `{source_sha}`\n" in readme
    assert (
        "- Regenerate: in a checkout of that repository, "
        "`kkc build site-b --repo PATH-OF-THIS-REPOSITORY --commit`\n" in readme
    )
    assert f"- Validated with kustomize v{engine}\n" in readme
    assert "s3cr3t" not in json.dumps(snapshot(deploy), default=repr)

    # generated files are collapsed by review tools, README included, and so are the
    # copies and their manifest (kkc's block in the top-level .gitattributes, committed with
    # the copies; the lines kkc did not write stay)
    generated = [
        "deploy/site-b/stages/infra/kustomization.yaml",
        "base/nova/services/kustomization.yaml",
        "overlays/ha/defaults.yaml",  # no example site's output refers to an overlay
        ".kkc-copies",
    ]
    attrs = repo.git.check_attr("linguist-generated", "gitlab-generated", "--", *generated)
    assert attrs.splitlines() == [
        f"{path}: {attr}: {value}"
        for path in generated
        for attr, value in (("linguist-generated", "true"), ("gitlab-generated", "set"))
    ]
    attrs = repo.git.check_attr("linguist-generated", "text", "--", "README.md")
    assert attrs.splitlines() == [
        "README.md: linguist-generated: unspecified",
        "README.md: text: set",
    ]
    assert (deploy / ".gitattributes").read_text().splitlines() == ["*.md text", *GENERATED]
    assert ".gitattributes" in {d.a_path for d in copies_commit.diff(start)}

    # rebuilding the same source changes nothing and commits nothing
    again = build(kkc, source, deploy, "site-b", "--commit")
    assert again.exit_code == 0, again.output
    assert again.stdout == (
        f"{deploy} (branch main): base/ and overlays/ copies: 0 added, 0 changed, 0 removed; "
        "nothing to commit\nsite-b: deploy/site-b/ up to date; nothing to commit\n"
    )
    assert repo.head.commit == site_commit


def test_copies_no_site_uses_are_removed(source: Path, deploy: Path, kkc) -> None:
    assert build(kkc, source, deploy, "site-a", "site-b", "--commit").exit_code == 0
    assert "base/heat/services" in copied_dirs(deploy)
    assert "base/cinder/services" in copied_dirs(deploy)
    write(deploy, "base/heat/NOTES.md", "not kkc's\n")  # never removed: kkc did not write it
    site_a = source / "sites" / "site-a" / "site.yaml"
    site_a.write_text(site_a.read_text().replace("  heat:\n    enabled: true\n", ""))
    commit(source, ["sites/site-a/site.yaml"], "site-a: no heat")

    # removing heat removes its ExternalSecret and, with it, its Secret (KKC157): allowed
    result = build(kkc, source, deploy, "site-a", "--commit", "--allow-destructive")
    # site-b is not rebuilt

    assert result.exit_code == 0, result.output
    heat = sorted(
        p.relative_to(source).as_posix() for p in (source / "base/heat").rglob("*") if p.is_file()
    )
    assert result.stdout.splitlines()[0].startswith(
        f"{deploy} (branch main): base/ and overlays/ copies: 0 added, 0 changed, "
        f"{len(heat)} removed; committed "
    )
    assert not (deploy / "base/heat/services").exists()
    assert (deploy / "base/heat/NOTES.md").read_text() == "not kkc's\n"
    # still used by site-a (cinder) or only by site-b, which this build did not touch
    assert copied_dirs(deploy) == sorted(
        {*SITE_B_BASES, "base/cinder/services", "base/horizon/services"}
    )
    repo = git.Repo(deploy)
    copies_commit = repo.head.commit.parents[0]
    assert copies_commit.message.startswith("kkc: update base/ and overlays/ copies\n\n")
    assert "".join(f"  removed: {p}\n" for p in heat) in copies_commit.message


def test_push_to_bare_remote_and_non_fast_forward(
    small_source: Path, deploy: Path, remote: Path, tmp_path: Path, kkc
) -> None:
    result = build(kkc, small_source, deploy, "site-k", "--commit", "--push")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("\npushed main to origin/main\n")
    pushed = git.Repo(remote).heads.main.commit
    assert pushed == git.Repo(deploy).head.commit

    # someone else pushes first
    other = git.Repo.clone_from(remote, tmp_path / "other")
    write(Path(other.working_tree_dir), "NOTES.md", "pushed by someone else\n")
    other.git.add("NOTES.md")
    other.git.commit("-q", "-m", "elsewhere")
    other.git.push("origin", "main")
    theirs = other.head.commit

    site_k = small_source / "sites" / "site-k" / "site.yaml"
    site_k.write_text(site_k.read_text().replace("tokenExpiration: 3600", "tokenExpiration: 7200"))
    commit(small_source, ["sites/site-k/site.yaml"], "longer tokens")
    # the real CLI: nothing but kkc's one line on stderr (GitPython logs git's stderr)
    result = subprocess.run(
        [Path(sys.executable).with_name("kkc"), "build", "site-k", "--commit", "--push"]
        + ["--repo", str(deploy)],
        cwd=small_source,  # the environment (KKC_CRD_DIR, git identity) is the tests'
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 4, result.stderr
    assert result.stderr == (
        f"push of main to origin/main rejected (non-fast-forward): the remote has commits "
        f"this clone does not; the local commits are kept. Run `git -C {deploy} pull "
        "--rebase` and push again, or reset the clone to the remote and rebuild\n"
    )
    assert git.Repo(remote).heads.main.commit == theirs  # nothing overwritten remotely
    local = git.Repo(deploy).head.commit
    assert local.message.startswith("kkc: build site-k\n") and local.parents == (pushed,)
    assert "  changed: " in local.message


def test_branch_is_created_and_used(small_source: Path, deploy: Path, kkc) -> None:
    result = build(kkc, small_source, deploy, "site-k", "--branch", "lab", "--commit")
    assert result.exit_code == 0, result.output
    repo = git.Repo(deploy)
    assert repo.active_branch.name == "lab"
    assert repo.heads.main.commit.message == "start\n"  # made with git commit -m
    readme = (deploy / "deploy" / "site-k" / "README.md").read_text()
    assert "`kkc build site-k --repo PATH-OF-THIS-REPOSITORY --branch lab --commit`" in readme


def test_errors_before_anything_is_written(small_source: Path, deploy: Path, tmp_path: Path, kkc):
    plain = tmp_path / "plain"
    plain.mkdir()
    before = snapshot(small_source), snapshot(deploy)

    result = build(kkc, small_source, plain, "site-k", "--commit")
    assert result.exit_code == 4
    assert result.stderr == (
        f"deploy repository {plain} is not a git repository; "
        "run `git init` or `git clone` there first\n"
    )
    assert list(plain.iterdir()) == []

    result = build(kkc, small_source, small_source, "site-k")
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"kkc build: --repo {small_source} is the site repository itself; drop --repo\n"
    )

    result = build(kkc, small_source, deploy, "site-k", "--push")
    assert (result.exit_code, result.stderr) == (2, "kkc build: --push needs --commit\n")
    result = kkc(small_source, "build", "site-k", "--branch", "lab")
    assert result.exit_code == 2
    assert result.stderr == (
        "kkc build: --branch needs --repo (kkc never switches the site repository)\n"
    )

    # a hand edit of a kkc-owned file in the deploy repository is not overwritten
    assert build(kkc, small_source, deploy, "site-k", "--commit").exit_code == 0
    before = snapshot(small_source), snapshot(deploy)
    write(deploy, "base/keystone/identity/kustomization.yaml", "# hand edit\n")
    edited = snapshot(deploy)
    result = build(kkc, small_source, deploy, "site-k", "--commit")
    assert result.exit_code == 4
    assert result.stderr == (
        f"deploy repository {deploy} has uncommitted changes in "
        "base/keystone/identity/kustomization.yaml; commit or discard them first "
        "(kkc would overwrite them)\n"
    )
    assert snapshot(deploy) == edited
    assert snapshot(small_source) == before[0]


def test_an_uncommitted_build_is_committed_later(small_source: Path, deploy: Path, kkc) -> None:
    repo = git.Repo(deploy)
    assert build(kkc, small_source, deploy, "site-k", "--commit").exit_code == 0
    site_k = small_source / "sites" / "site-k" / "site.yaml"
    site_k.write_text(site_k.read_text().replace("tokenExpiration: 3600", "tokenExpiration: 7200"))
    head = repo.head.commit
    first = build(kkc, small_source, deploy, "site-k")
    assert first.exit_code == 0 and repo.head.commit == head
    readme = (deploy / "deploy" / "site-k" / "README.md").read_text()
    assert " plus uncommitted changes\n" in readme  # the small_source work tree was modified
    second = build(kkc, small_source, deploy, "site-k", "--commit")
    assert second.exit_code == 0, second.output
    assert second.stdout.endswith(
        "site-k: deploy/site-k/ up to date; committed " + (repo.head.commit.hexsha[:12]) + "\n"
    )
    assert not repo.is_dirty(untracked_files=True)


def test_references_outside_base_and_overlays_are_refused() -> None:
    from kkc.deployrepo import used_dirs
    from kkc.errors import OutputInvalid

    files = {
        "deploy/s/kustomization.yaml": b"resources:\n  - stages/infra\n  - ../../extra/x\n",
        "deploy/s/stages/infra/kustomization.yaml": b"resources:\n  - ../../../../base/a/b\n",
        "base/a/b/kustomization.yaml": b"resources:\n  - ../../../../../up\n",
    }
    units = {PurePosixPath("deploy/s"): ["kustomization.yaml", "stages/infra/kustomization.yaml"]}

    def read(path: PurePosixPath) -> bytes | None:
        return files.get(path.as_posix())

    with pytest.raises(OutputInvalid) as exc:
        used_dirs(units, read)
    assert exc.value.lines() == [
        "deploy/s/kustomization.yaml:1:1: KKC332 refers to extra/x/, which is neither under "
        "base/ nor overlays/; kkc copies only those into a deploy repository"
    ]
    files["deploy/s/kustomization.yaml"] = b"resources:\n  - stages/infra\n"
    with pytest.raises(OutputInvalid) as exc:
        used_dirs(units, read)
    assert exc.value.lines() == [
        "base/a/b/kustomization.yaml:1:1: KKC331 resources entry ../../../../../up leaves the "
        "repository; a deploy repository can only hold what is inside it"
    ]


def test_repo_url_of_another_repository_warns(source: Path, deploy: Path, remote: Path, kkc):
    set_repo_url(source, SOURCE_URL)  # the default: the controller would read the sites
    result = build(kkc, source, deploy, "site-b")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"warning: sites/defaults.yaml:16:12: KKC162 gitops.repoURL {SOURCE_URL} is not the "
        f"deploy repository ({DEPLOY_URL}, {remote}): the GitOps controller would not read "
        "what kkc writes there; set gitops.repoURL (and gitops.revision) to the deploy "
        "repository and its branch"
    ]


def test_same_repository() -> None:
    for other in (
        "https://git.example.com/cloud/openstack-deploy",
        "https://bot@git.example.com/cloud/openstack-deploy.git/",
        "ssh://git@git.example.com:2222/cloud/openstack-deploy.git",
        "git@git.example.com:cloud/openstack-deploy.git",
        "git@GIT.example.com:/cloud/openstack-deploy",
    ):
        assert same_repository(DEPLOY_URL, other), other
    for other in (
        "https://git.example.com/cloud/openstack-sites.git",
        "https://git.example.org/cloud/openstack-deploy.git",
        "/srv/git/cloud/openstack-deploy.git",
    ):
        assert not same_repository(DEPLOY_URL, other), other
    assert same_repository("file:///srv/git/deploy.git", "/srv/git/deploy")
    assert same_repository("file:///srv/git/deploy.git", "/srv/git/../git/deploy.git")


def test_all_removes_deleted_sites_and_their_copies(
    source: Path, deploy: Path, remote: Path, kkc
) -> None:
    """site-a alone uses the cinder, heat and horizon bases: deleting it from the site
    repository removes its output and those copies from the deploy repository. (Its Galera
    variant site-a-ha uses them too: not in this repository.)"""
    git.Repo(source).git.rm("-r", "-q", "sites/site-a-ha")
    git.Repo(source).git.commit("-q", "-m", "no site-a-ha")
    result = build(kkc, source, deploy, "--all", "--commit", "--push")
    assert result.exit_code == 0, result.output
    repo = git.Repo(deploy)
    assert {"base/heat/services", "base/cinder/services"} <= set(copied_dirs(deploy))
    owned = json.loads((deploy / "deploy/site-a/.kkc-files").read_text())
    before = repo.head.commit
    git.Repo(source).git.rm("-r", "-q", "sites/site-a")
    git.Repo(source).git.commit("-q", "-m", "drop site-a")

    result = build(kkc, source, deploy, "--all", "--commit", "--push")

    assert result.exit_code == 0, result.output
    site_b, copies = repo.head.commit, repo.head.commit.parents[0]
    [removal] = copies.parents
    assert removal.parents == (before,)
    lines = result.stdout.splitlines()
    gone = len(json.loads(before.tree[".kkc-copies"].data_stream.read())["files"]) - len(
        json.loads((deploy / ".kkc-copies").read_text())["files"]
    )
    assert lines[0] == (
        f"{deploy} (branch main): base/ and overlays/ copies: 0 added, 0 changed, {gone} "
        f"removed; committed {copies.hexsha[:12]}"
    )
    assert lines[1:] == [
        # its README names the new source commit, and .kkc-files the README's digest
        "site-b: wrote deploy/site-b/ (files: 0 added, 2 changed, 0 removed; objects: 0 added, "
        f"0 changed, 0 removed); committed {site_b.hexsha[:12]}",
        f"site-a: removed deploy/site-a/ (the site no longer exists; files: "
        f"{len(owned['files']) + 1} removed; objects: {len(owned['objects'])} removed); "
        f"committed {removal.hexsha[:12]}",
        "pushed main to origin/main",
    ]
    assert git.Repo(remote).heads.main.commit == site_b
    # the removal first: every commit holds the copies its sites use
    assert removal.message.startswith("kkc: remove site-a\n\nObjects: 0 added, 0 changed, ")
    assert {d.a_path for d in before.diff(removal)} == {
        f"deploy/site-a/{p}" for p in [*owned["files"], ".kkc-files"]
    }
    assert copies.message.startswith("kkc: update base/ and overlays/ copies\n\n")
    assert "  removed: base/heat/services/kustomization.yaml\n" in copies.message
    assert not (deploy / "deploy/site-a").exists()
    assert copied_dirs(deploy) == SITE_B_BASES
    assert not repo.is_dirty(untracked_files=True)
    tops = {p.split("/")[0] for p in (b.path for b in site_b.tree.traverse())}
    assert tops == {"README.md", ".gitattributes", ".kkc-copies", "base", "deploy"}


@pytest.mark.parametrize("engine", ["argocd", "flux"])
@pytest.mark.slow
def test_emulated_reconcile_of_a_fresh_clone(
    source: Path, deploy: Path, remote: Path, engine: str, tmp_path: Path, kkc
) -> None:
    """What Argo CD or Flux does with the deploy repository: clone what was pushed, read the
    site's bootstrap objects there and build every path they point at."""
    sites = ["site-a", "site-b"]
    for site in sites:
        set_engine(source, site, engine)
    commit(source, [f"sites/{s}/site.yaml" for s in sites], f"use {engine}")
    result = build(kkc, source, deploy, "--all", "--branch", "main", "--commit", "--push")
    assert result.exit_code == 0, result.output
    assert "KKC162" not in result.stderr

    clone = tmp_path / "clone"
    git.Repo.clone_from(str(remote), str(clone), branch="main")
    assert not (clone / "sites").exists()  # only what the deploy repository holds
    for site in sites:
        version = load_site(source, site).get("kubernetes.version")
        path = f"deploy/{site}"
        objects = list(yaml.safe_load_all((clone / path / "bootstrap.yaml").read_text()))
        if engine == "argocd":
            project, application = objects
            assert project["spec"]["sourceRepos"] == [DEPLOY_URL]
            source_spec = application["spec"]["source"]
            assert source_spec == {"repoURL": DEPLOY_URL, "targetRevision": "main", "path": path}
            applied = controller_build(clone, source_spec["path"], version)
        else:
            repository, *kustomizations = objects
            assert repository["kind"] == "GitRepository"
            assert (repository["spec"]["url"], repository["spec"]["ref"]) == (
                DEPLOY_URL,
                {"branch": "main"},
            )
            paths = [k["spec"]["path"] for k in kustomizations]
            assert paths == [f"./{path}/stages/{s}" for s in expected_stages(clone, site)]
            applied = [o for p in paths for o in controller_build(clone, p[2:], version)]
        keys = [object_key(o) for o in applied]
        assert len(keys) == len(set(keys)), "an object is applied twice"
        assert set(keys) == validated_objects(clone, site)


# ---- kkc check and kkc diff of a deploy repository -------------------------------------------

KEYSTONE_BASE = "base/keystone/identity/keystone-api-deployment.yaml"


def test_check_reads_the_committed_deploy_repository(small_source: Path, deploy: Path, kkc) -> None:
    assert build(kkc, small_source, deploy, "site-k", "--branch", "main", "--commit").exit_code == 0
    repo = git.Repo(deploy)
    sha = repo.head.commit.hexsha[:12]
    write(deploy, "deploy/site-k/notes.txt", "not committed: not checked\n")
    before = snapshot(deploy)
    result = kkc(small_source, "check", "site-k", "--repo", str(deploy), "--branch", "main")
    assert result.exit_code == 0, result.output
    assert (
        result.stdout == f"site-k: {deploy}/deploy/site-k/ at main ({sha}) up to date and valid\n"
    )
    assert snapshot(deploy) == before  # reads git objects only: writes nothing there

    # committed by hand in the deploy repository: a copy edited, a foreign file
    path = deploy / KEYSTONE_BASE
    path.write_text(path.read_text().replace("revisionHistoryLimit: 5", "revisionHistoryLimit: 4"))
    commit(deploy, [KEYSTONE_BASE, "deploy/site-k/notes.txt"], "hand edits")
    rebuild = f"run `kkc build site-k --repo {deploy} --branch main` and commit the result"
    result = kkc(small_source, "check", "site-k", "--repo", str(deploy), "--branch", "main")
    assert result.exit_code == 1
    assert result.stdout == (
        f"{deploy}/{KEYSTONE_BASE}:1:1: KKC327 stale (recompiling changes it); {rebuild}\n"
        f"{deploy}/deploy/site-k/notes.txt:1:1: KKC329 not generated by kkc (not in "
        ".kkc-files); remove it, or use sites/site-k/patches/\n"
    )
    # the site repository has no deploy/: its own check would say "not built"
    result = kkc(small_source, "check", "site-k")
    assert result.exit_code == 1 and "KKC330 not built" in result.stdout


def test_diff_against_the_deploy_repository(small_source: Path, deploy: Path, kkc) -> None:
    start = git.Repo(deploy).head.commit.hexsha
    assert build(kkc, small_source, deploy, "site-k", "--branch", "main", "--commit").exit_code == 0
    head = git.Repo(deploy).head.commit.hexsha
    args = ("diff", "site-k", "--repo", str(deploy))
    result = kkc(small_source, *args, "--branch", "main")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"site-k: no changes against main ({head[:12]})\n"

    # a base changed in the site repository's work tree
    path = small_source / KEYSTONE_BASE
    path.write_text(path.read_text().replace("revisionHistoryLimit: 5", "revisionHistoryLimit: 4"))
    result = kkc(small_source, *args)
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith(
        f"site-k: 0 added, 1 changed, 0 removed against HEAD ({head[:12]})\n"
        "  stage identity (3 of 7)\n"
        "    changed  Deployment/openstack-k/keystone-api\n"
        "--- a/Deployment/openstack-k/keystone-api\n"
    )
    assert "-  revisionHistoryLimit: 5\n+  revisionHistoryLimit: 4\n" in result.stdout

    # --against: a revision of the deploy repository (before site-k was built there)
    result = kkc(small_source, *args, "--against", start[:10], "--format", "json")
    assert result.exit_code == 1, result.output
    [site] = json.loads(result.stdout)
    assert site["commit"] == start and site["summary"]["changed"] == 0
    assert site["summary"]["added"] == len(
        json.loads((deploy / "deploy/site-k/.kkc-files").read_text())["objects"]
    )


def test_review_of_a_deploy_repository_usage_errors(small_source: Path, deploy: Path, kkc) -> None:
    where = f"in deploy repository {deploy}"
    result = kkc(small_source, "diff", "site-k", "--repo", str(deploy), "--against", "nope")
    assert (result.exit_code, result.stderr) == (
        2,
        f"<command line>:1:1: KKC170 --against nope: no such git revision {where}\n",
    )
    for command in ("diff", "check"):
        result = kkc(small_source, command, "site-k", "--repo", str(deploy), "--branch", "nope")
        assert (result.exit_code, result.stderr) == (
            2,
            f"<command line>:1:1: KKC170 --branch nope: no such branch {where}\n",
        )
        result = kkc(small_source, command, "site-k", "--branch", "main")
        assert (result.exit_code, result.stderr) == (
            2,
            f"kkc {command}: --branch needs --repo (the branch of the deploy repository to read)\n",
        )
        result = kkc(small_source, command, "site-k", "--repo", str(small_source))
        assert (result.exit_code, result.stderr) == (
            2,
            f"kkc {command}: --repo {small_source} is the site repository itself; drop --repo\n",
        )
    result = kkc(
        small_source,
        "diff",
        "site-k",
        "--repo",
        str(deploy),
        "--branch",
        "main",
        "--against",
        "HEAD",
    )
    assert (result.exit_code, result.stderr) == (
        2,
        "kkc diff: --against and --branch both name the revision to compare with\n",
    )


def test_build_into_a_deploy_repository_refuses_an_immutable_change(
    source: Path, deploy: Path, kkc
) -> None:
    """Compared with the head of the branch written to: a smaller Glance claim is KKC156."""
    assert build(kkc, source, deploy, "site-b", "--commit").exit_code == 0
    path = source / "sites/site-b/site.yaml"
    path.write_text(path.read_text().replace("size: 20Gi", "size: 10Gi", 1))
    line = path.read_text().splitlines().index("    storage:") + 1
    before = snapshot(deploy)
    result = build(kkc, source, deploy, "site-b", "--commit")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        f"sites/site-b/site.yaml:{line}:5: KKC156 PersistentVolumeClaim/openstack-lab/"
        "glance-images: spec.resources.requests.storage 20Gi -> 10Gi: the API server refuses"
    )
    assert snapshot(deploy) == before
    result = kkc(source, "check", "site-b", "--repo", str(deploy))
    assert result.exit_code == 2, result.output
    assert f"sites/site-b/site.yaml:{line}:5: KKC156 PersistentVolumeClaim/" in result.stdout
    result = build(kkc, source, deploy, "site-b", "--commit", "--allow-destructive")
    assert result.exit_code == 0, result.output
    assert "warning: sites/site-b/site.yaml" in result.stderr
