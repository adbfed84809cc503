"""The command line: flag translation only. Every command calls the library and prints.

Errors are turned into messages and exit codes in exactly one place, KkcGroup.invoke."""

from __future__ import annotations

import json
import platform
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from . import __version__, build, kustomize, validate
from .errors import KkcError, UsageError
from .site import find_root, list_sites, load_site
from .yamlio import dump


class KkcGroup(TyperGroup):
    """Runs a command; a KkcError becomes its lines on stderr and its exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KkcError as exc:
            for line in exc.lines():
                typer.echo(line, err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("kkc: interrupted", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=KkcGroup,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    help="kkc, the Kolla Kubernetes Compiler: compiles sites/SITE/site.yaml into a validated "
    "Kustomize tree in deploy/SITE/ for an OpenStack control plane made of Kolla images.\n\n"
    "Exit codes: 0 ok, 1 difference found, 2 invalid input or usage, 3 rendered output "
    "invalid, 4 environment (kustomize missing, git failure), 130 interrupted.",
)


class Output(StrEnum):
    text = "text"
    json = "json"


RootOpt = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="Site repository root (default: the nearest directory with sites/).",
        file_okay=False,
    ),
]
CrdOpt = Annotated[
    str | None,
    typer.Option(
        "--crd-dir",
        envvar=validate.CRD_DIR_ENV,
        help="Directory of CRD YAML files to validate custom resources "
        "(ExternalSecret, ...) against. Env: KKC_CRD_DIR.",
    ),
]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="text or json.")]
SiteArg = Annotated[str, typer.Argument(help="Site name: the directory sites/SITE/.")]


def _root(root: Path | None) -> Path:
    return root.resolve() if root else find_root(Path.cwd())


def _json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kkc {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """kkc: site definitions in, validated and committed Kustomize trees out."""


@app.command("build")
def build_cmd(
    sites: Annotated[
        list[str] | None, typer.Argument(help="Sites to build.", show_default=False)
    ] = None,
    all_sites: Annotated[
        bool, typer.Option("--all", help="Build every site under sites/.")
    ] = False,
    commit: Annotated[
        bool,
        typer.Option(
            "--commit",
            help="Commit the changed kkc-owned files "
            "(only those) with GitPython; no commit when nothing changed.",
        ),
    ] = False,
    push: Annotated[
        bool,
        typer.Option(
            "--push",
            help="After --commit, push the branch to its upstream (else origin). A rejected "
            "(non-fast-forward) push is exit 4 and keeps the local commits.",
        ),
    ] = False,
    repo: Annotated[
        Path | None,
        typer.Option(
            "--repo",
            metavar="PATH",
            file_okay=False,
            help="Write into this separate deploy repository (a git work tree) instead: "
            "deploy/SITE/ plus copies of exactly the base/ and overlays/ directories the "
            "sites use, so that it builds on its own.",
        ),
    ] = None,
    branch: Annotated[
        str | None,
        typer.Option(
            "--branch",
            metavar="NAME",
            help="With --repo: check this branch out first (created from origin/NAME or "
            "the current commit if missing). Default: the deploy repository's current branch.",
        ),
    ] = None,
    crd_dir: CrdOpt = None,
    output: OutputOpt = Output.text,
    root: RootOpt = None,
) -> None:
    """Compile sites into deploy/SITE/ and validate the result.

    Renders the tree, runs `kustomize build` as the controller will, validates every object
    (Kubernetes schema of the site's version, strict; CRD schemas), then swaps the new tree
    in atomically. Invalid input (exit 2) or output (exit 3) writes nothing.

    Examples:

    * kkc build site-a --commit

    * kkc build --all --repo ../deploy-repo --branch main --commit --push"""
    base = _root(root)
    if not sites and not all_sites:
        raise UsageError("name at least one site, or pass --all")
    if push and not commit:
        raise UsageError("--push needs --commit")
    if branch and repo is None:
        raise UsageError("--branch needs --repo (kkc never switches the site repository)")
    chosen = build.load_sites(base, sites or [], all_sites)
    deployed = None
    if repo is None:
        results = build.build_sites(base, chosen, crd_dir=crd_dir, commit=commit)
    else:
        deployed = build.build_into_repo(
            base, chosen, target=repo, branch=branch, crd_dir=crd_dir, commit=commit
        )
        results = deployed.sites
    for warning in dict.fromkeys(w for r in results for w in r.warnings):
        typer.echo(warning, err=True)
    pushed_repo = deployed.repo if deployed else base
    if output is Output.json:
        rows: Any = [
            {
                "site": r.site,
                "files": vars(r.files),
                "objects": vars(r.objects),
                "commit": r.commit,
            }
            for r in results
        ]
        if deployed or push:
            rows = {"sites": rows, "pushed": build.push(pushed_repo) if push else None}
        if deployed:
            rows.update(
                repo=str(deployed.repo),
                branch=deployed.branch,
                copies={**vars(deployed.copies), "commit": deployed.copies_commit},
            )
        _json(rows)
        return
    if deployed:
        c = deployed.copies
        line = (
            f"{deployed.repo} (branch {deployed.branch}): base/ and overlays/ copies: "
            f"{len(c.added)} added, {len(c.changed)} changed, {len(c.removed)} removed"
        )
        if commit:
            line += (
                f"; committed {deployed.copies_commit[:12]}"
                if deployed.copies_commit
                else "; nothing to commit"
            )
        typer.echo(line)
    for r in results:
        f, o = r.files, r.objects
        if not f:
            line = f"{r.site}: deploy/{r.site}/ up to date"
        else:
            line = (
                f"{r.site}: wrote deploy/{r.site}/ (files: {len(f.added)} added, {len(f.changed)} "
                f"changed, {len(f.removed)} removed; objects: {len(o.added)} added, "
                f"{len(o.changed)} changed, {len(o.removed)} removed)"
            )
        if commit:
            line += f"; committed {r.commit[:12]}" if r.commit else "; nothing to commit"
        typer.echo(line)
    if push:
        typer.echo(f"pushed {build.push(pushed_repo)}")


@app.command("render")
def render_cmd(site: SiteArg, crd_dir: CrdOpt = None, root: RootOpt = None) -> None:
    """Print the rendered, validated manifests of a site.

    This is what the controller will apply. Writes nothing."""
    base = _root(root)
    rendered = build.render(base, load_site(base, site), crd_dir)
    for warning in rendered.warnings:
        typer.echo(warning, err=True)
    sys.stdout.write(rendered.manifests)


@app.command("show")
def show_cmd(
    site: SiteArg,
    explain: Annotated[
        str | None,
        typer.Option(
            "--explain",
            metavar="DOTTED.PATH",
            help="Show where this value came from, e.g. services.keystone.api.replicas.",
        ),
    ] = None,
    output: OutputOpt = Output.text,
    root: RootOpt = None,
) -> None:
    """Print the effective site definition, or where one value came from.

    Layers, lowest first: compiler defaults, sites/defaults.yaml, each overlay's
    defaults.yaml, the site. With --explain: the file, line and layer that set the value."""
    s = load_site(_root(root), site)
    if explain is None:
        if output is Output.json:
            _json(s.data)
        else:
            typer.echo(dump(s.data), nl=False)
        return
    value, origins = s.explain(explain)
    if not origins:
        raise UsageError(f"{explain}: no such key in the effective definition of {site}")
    if output is Output.json:
        _json({"path": explain, "value": value, "origins": [vars(o) for o in origins]})
        return
    typer.echo(f"{explain}: {json.dumps(value, sort_keys=True)}")
    for o in origins:
        typer.echo(f"  {o}")


@app.command("secrets")
def secrets_cmd(site: SiteArg, output: OutputOpt = Output.text, root: RootOpt = None) -> None:
    """List every Secret the site expects, its keys, and where each comes from.

    Prints names and references only, never values."""
    reqs = build.secret_requirements(load_site(_root(root), site))
    if output is Output.json:
        _json(reqs)
        return
    for r in reqs:
        typer.echo(f"{r['namespace']}/{r['name']}: {r['purpose']}")
        typer.echo(f"  source: {r['source']}")
        for k in r["keys"]:
            ref = k.get("remoteRef")
            origin = (
                f" <- {ref['key']}" + (f" [{ref['property']}]" if "property" in ref else "")
                if ref
                else ""
            )
            kind = " (rendered from the other keys)" if "template" in k else ""
            typer.echo(f"  - {k['key']}: {k['description']}{kind}{origin}")
            for line in k.get("content", "").splitlines():
                typer.echo(f"      | {line}")


@app.command("list")
def list_cmd(output: OutputOpt = Output.text, root: RootOpt = None) -> None:
    """List the sites of this repository and whether deploy/SITE/ exists."""
    base = _root(root)
    rows = [
        {"site": s, "built": (base / "deploy" / s / ".kkc-files").is_file()}
        for s in list_sites(base)
    ]
    if output is Output.json:
        _json(rows)
        return
    for r in rows:
        typer.echo(f"{r['site']}\t{'built' if r['built'] else 'not built'}")


@app.command("doctor")
def doctor_cmd(crd_dir: CrdOpt = None, output: OutputOpt = Output.text) -> None:
    """Show the kustomize engine kkc will use, its version, and the other tools found."""
    import git as gitpython
    import kubernetes_validate

    from .gitrepo import git_version

    engine = kustomize.find_engine()
    crds = validate.crd_validators(crd_dir) if crd_dir else {}
    info = {
        "kkc": __version__,
        "python": platform.python_version(),
        "kustomize": engine.describe(),
        "git": git_version(),
        "gitpython": gitpython.__version__,
        "kubernetes-validate": kubernetes_validate.__version__,
        "crd-dir": f"{crd_dir} ({len(crds)} served CRD versions)"
        if crd_dir
        else "not set (KKC_CRD_DIR)",
    }
    if output is Output.json:
        _json(info)
        return
    for k, v in info.items():
        typer.echo(f"{k:20} {v}")


def main() -> None:
    app()
