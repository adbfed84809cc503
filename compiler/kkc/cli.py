"""The command line: flag translation only. Every command calls the library and prints.

Errors are turned into messages and exit codes in exactly one place, KkcGroup.invoke."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click import exceptions as click_errors
from typer._click.core import ParameterSource
from typer.core import TyperGroup

from . import (
    __version__,
    affected,
    bootstrap,
    build,
    cache,
    check,
    diff,
    doctor,
    edits,
    fleet,
    gitops,
    overlaylint,
    pipeline,
    pool,
    progress,
    report,
    restore,
    rotate,
    scaffold,
    secretreqs,
    show,
    upgrade,
    upgradeplan,
    validate,
)
from .errors import (
    DifferenceFound,
    KkcError,
    Problem,
    SiteInvalid,
    UsageError,
    command_line_error,
    unlocated,
)
from .loader import find_root

_PARSE_ERROR = "kkc.parse_error"


def _json_requested(args: list[str]) -> bool:
    """Whether the command line asks for ``-o json`` (the last -o/--output wins; for `kkc
    diff` also its deprecated --format/-f), read from the words themselves, so that even
    an error found while parsing them is reported as JSON."""
    command = next((a for a in args if not a.startswith("-")), None)
    names = ("-o", "--output", *(("-f", "--format") if command == "diff" else ()))
    value = None
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg in names and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--") and arg.split("=", 1)[0] in names and "=" in arg:
            value = arg.split("=", 1)[1]
        elif not arg.startswith("--") and arg[:2] in names and len(arg) > 2:
            value = arg[2:]
    return value == "json"


def _usage_line(prefix: str, message: str) -> str:
    """The one style of usage errors, kkc's and Click's: ``kkc COMMAND: message``."""
    message = " ".join(message.replace("Value error, ", "").split())
    return f"{prefix}: {message}"


class KkcGroup(TyperGroup):
    """Runs a command; a KkcError or a usage error becomes its lines on stderr (with -o
    json: a {"problems": [...]} report on stdout) and its exit code. The only place
    where errors become messages and exit codes."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click_errors.NoArgsIsHelpError:
            raise
        except click_errors.UsageError as exc:  # kkc's own options: reported by invoke
            ctx.meta[_PARSE_ERROR] = (exc, list(args))
            return []

    def invoke(self, ctx: Any) -> Any:
        parse_error, args = ctx.meta.pop(_PARSE_ERROR, (None, None))
        if args is None:
            args = [*ctx._protected_args, *ctx.args]
        as_json = _json_requested(args)
        try:
            if parse_error is not None:
                raise parse_error
            return super().invoke(ctx)
        except click_errors.NoArgsIsHelpError:
            raise
        except click_errors.UsageError as exc:
            sub = exc.ctx is not None and exc.ctx.parent is not None
            prefix = f"kkc {exc.ctx.info_name}" if sub else "kkc"
            if as_json:
                message = _usage_line("", exc.format_message())[2:]
                _json({"problems": report.entries([unlocated(message, "<command line>")])})
            else:
                typer.echo(_usage_line(prefix, exc.format_message()), err=True)
            raise typer.Exit(2) from None
        except KkcError as exc:
            if as_json and not isinstance(exc, DifferenceFound):  # its report is printed
                _json({**exc.report, "problems": report.failure_entries(exc)})
            elif isinstance(exc, UsageError):
                for line in exc.lines():
                    typer.echo(_usage_line(f"kkc {ctx.invoked_subcommand}", line), err=True)
            else:
                for line in exc.lines():
                    typer.echo(line, err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("kkc: interrupted", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=KkcGroup,
    add_completion=True,
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


class Format(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


RootOpt = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="Site repository root (default: the nearest directory with sites/).",
        file_okay=False,
    ),
]


def _crd_dir(value: str | None) -> str | None:
    return validate.check_crd_dir(value)  # before any work: KKC171, exit 2


CrdOpt = Annotated[
    str | None,
    typer.Option(
        "--crd-dir",
        envvar=validate.CRD_DIR_ENV,
        callback=_crd_dir,
        help="Directory of CRD YAML files that add kinds to, and override, the CRD schemas "
        "embedded in kkc. Env: KKC_CRD_DIR.",
    ),
]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="text or json.")]
SiteArg = Annotated[str, typer.Argument(help="Site name: the directory sites/SITE/.")]
SitesArg = Annotated[
    list[str] | None,
    typer.Argument(help="Sites (default: every site under sites/).", show_default=False),
]
ReviewRepoOpt = Annotated[
    Path | None,
    typer.Option(
        "--repo",
        metavar="PATH",
        file_okay=False,
        help="The output lives in this separate deploy repository (`kkc build --repo PATH`): "
        "read its committed deploy/SITE/ and base/ and overlays/ copies, and render the "
        "sites as `kkc build --repo` does.",
    ),
]
ReviewBranchOpt = Annotated[
    str | None,
    typer.Option(
        "--branch",
        metavar="NAME",
        help="With --repo: read the head of this branch of the deploy repository (the local "
        "branch, else origin/NAME; nothing is checked out). Default: its HEAD.",
    ),
]
AllOpt = Annotated[
    bool,
    typer.Option("--all", help="Every site under sites/ (the default when no site is named)."),
]


def _root(root: Path | None) -> Path:
    return root.resolve() if root else find_root(Path.cwd())


def _json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


def _report(done: Any, output: Output) -> None:
    """A command's result as -o asks: its JSON on stdout, or its text lines."""
    if output is Output.json:
        _json(done.as_json())
    else:
        for line in done.lines():
            typer.echo(line)


def _warn(warnings: list[Problem]) -> None:
    """The warnings of a command's text output, each once, on stderr."""
    for warning in report.unique(warnings):
        typer.echo(report.line(warning), err=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kkc {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Do not read or write kkc's caches of kustomize builds and rendered sites "
            "(the same as KKC_NO_CACHE=1); `kkc doctor` shows where they are, `kkc cache "
            "clean` empties them.",
        ),
    ] = False,
) -> None:
    """kkc: site definitions in, validated and committed Kustomize trees out."""
    if no_cache:
        cache.use(False)


BuildSitesArg = Annotated[
    list[str] | None, typer.Argument(help="Sites to build.", show_default=False)
]
BuildAllOpt = Annotated[
    bool,
    typer.Option(
        "--all",
        help="Build every site under sites/, and remove the kkc-owned output of sites "
        "that no longer exist (files kkc does not own stay).",
    ),
]
CommitOpt = Annotated[
    bool,
    typer.Option(
        "--commit",
        help="Commit the changed kkc-owned files (only those; whatever else is staged "
        "stays staged) with the git CLI; no commit when nothing changed. The "
        "Source-Commit trailer names HEAD, or HEAD-dirty plus a Source-Digest when the "
        "site's sources are uncommitted: commit the source change first.",
    ),
]
PushOpt = Annotated[
    bool,
    typer.Option(
        "--push",
        help="After --commit, push the branch to its upstream (else origin). A rejected "
        "(non-fast-forward) push is exit 4 and keeps the local commits.",
    ),
]
BuildRepoOpt = Annotated[
    Path | None,
    typer.Option(
        "--repo",
        metavar="PATH",
        file_okay=False,
        help="Write into this separate deploy repository (a git work tree) instead: "
        "deploy/SITE/ plus copies of exactly the base/ and overlays/ directories the "
        "sites use, so that it builds on its own.",
    ),
]
BuildBranchOpt = Annotated[
    str | None,
    typer.Option(
        "--branch",
        metavar="NAME",
        help="With --repo: check this branch out first (created from origin/NAME or "
        "the current commit if missing). Default: the deploy repository's current branch.",
    ),
]


AllowDestructiveOpt = Annotated[
    bool,
    typer.Option(
        "--allow-destructive",
        help="Accept (build: write; check: pass) a change that, compared with the "
        "committed output, the API server would refuse (an immutable field, KKC156; take "
        "the way out the message names first) or that destroys data (an ExternalSecret "
        "owning its Secret removed, KKC157; a secret back-end switch, KKC158; a MariaDB "
        "provider switch, KKC159); the findings become warnings.",
    ),
]


def _progress(ctx: typer.Context, verb: str, as_json: bool) -> None:
    """The progress of a fleet command on stderr, and its summary line at the end
    (:mod:`kkc.progress`); nothing with -o json."""
    ctx.with_resource(progress.reporting(progress.choose(verb, as_json)))


def _jobs(value: int | None) -> int:
    if value is None:
        return pool.default_jobs()
    if value < 1:
        raise command_line_error("KKC163", f"--jobs must be at least 1, not {value}")
    return value


JobsOpt = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        "-j",
        help="Sites rendered and validated at once, in worker processes (default: the "
        "number of CPUs; 1: in this process; fewer than 6 sites always run in this "
        "process). Output and exit codes do not depend on it.",
    ),
]
ShardOpt = Annotated[
    str | None,
    typer.Option(
        "--shard",
        metavar="I/N",
        help="Only shard I of N of the sites (named, or every site): a site is in the "
        "shard its name's sha256 picks, so adding a site moves no other; for a CI matrix "
        "of N runners. Pruned or orphaned output of gone sites: by its shard too.",
        show_default=False,
    ),
]


@app.command("build")
def build_cmd(
    ctx: typer.Context,
    sites: BuildSitesArg = None,
    all_sites: BuildAllOpt = False,
    commit: CommitOpt = False,
    push: PushOpt = False,
    repo: BuildRepoOpt = None,
    branch: BuildBranchOpt = None,
    allow_destructive: AllowDestructiveOpt = False,
    crd_dir: CrdOpt = None,
    jobs: JobsOpt = None,
    shard: ShardOpt = None,
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
    _progress(ctx, "build", output is Output.json)
    done = build.run(
        _root(root),
        sites or [],
        all_sites=all_sites,
        commit=commit,
        push=push,
        repo=repo,
        branch=branch,
        crd_dir=crd_dir,
        allow_destructive=allow_destructive,
        jobs=_jobs(jobs),
        shard=fleet.parse_shard(shard),
    )
    if output is Output.json:
        _json(done.as_json())  # pushes first, as the report names what was pushed
        return
    _warn(done.warnings)
    for line in done.lines():
        typer.echo(line)
    if push:  # after the report: a rejected push still shows what was built and committed
        typer.echo(f"pushed {done.push()}")


@app.command("init")
def init_cmd(
    site: SiteArg,
    from_site: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="SITE",
            help="Copy this site's definition (and its config/ and patches/), renamed, "
            "with a region and host names of its own.",
        ),
    ] = None,
    release: Annotated[
        str | None,
        typer.Option(
            "--release",
            metavar="RELEASE",
            help="The OpenStack release. Default: the one sites/defaults.yaml pins; "
            "without either kkc refuses (the release is a decision, never a default).",
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option("--engine", metavar="argocd|flux", help="The GitOps controller."),
    ] = None,
    services: Annotated[
        str | None,
        typer.Option(
            "--services",
            metavar="A,B,...",
            help="The OpenStack services to enable (their dependencies are added). "
            f"Default: {','.join(scaffold.DEFAULT_SERVICES)}.",
        ),
    ] = None,
    output: OutputOpt = Output.text,
    root: RootOpt = None,
) -> None:
    """Scaffold a site: write a commented sites/SITE/site.yaml that `kkc build SITE`
    builds at once, and print the next commands. Never overwrites a site (KKC147).

    Examples: kkc init site-c --release 2026.1 --services keystone,glance ;
    kkc init site-d --from site-b"""
    done = scaffold.init(
        _root(root),
        site,
        from_site=from_site,
        release=release,
        engine=engine,
        services=[s.strip() for s in services.split(",") if s.strip()] if services else None,
    )
    _report(done, output)


@app.command("set")
def set_cmd(
    site: SiteArg,
    assignments: Annotated[
        list[str],
        typer.Argument(
            metavar="PATH=VALUE...",
            help="Dotted paths of the site definition and YAML scalar values, e.g. "
            "services.nova.api.replicas=2.",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the diff of the change; write nothing.")
    ] = False,
    crd_dir: CrdOpt = None,
    output: OutputOpt = Output.text,
    root: RootOpt = None,
) -> None:
    """Edit sites/SITE/site.yaml, keeping its comments and layout, and show the change as
    the object-level diff of the rendered output.

    Every assignment is validated (the schema, with did-you-mean for an unknown path; no
    plain-text secret) and the edited definition is loaded and rendered as `kkc build`
    does before anything is written (exit 2 or 3, nothing written). deploy/SITE/ is not
    touched: run `kkc build SITE` next.

    Examples: kkc set site-b services.nova.compute.virtType=kvm ;
    kkc set site-a services.glance.api.replicas=3 ha.enabled=true --dry-run"""
    done = edits.set_values(_root(root), site, assignments, dry_run=dry_run, crd_dir=crd_dir)
    _warn(done.warnings)
    _report(done, output)


@app.command("upgrade")
def upgrade_cmd(
    site: SiteArg,
    to: Annotated[str, typer.Option("--to", metavar="RELEASE", help="The OpenStack release.")],
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Print the upgrade's phases in the controller's order (Jobs and their "
            "commands, workloads that roll, gates, what cannot be undone); write nothing.",
        ),
    ] = False,
    crd_dir: CrdOpt = None,
    output: Annotated[
        Format,
        typer.Option("--output", "-o", help="text or json; with --plan also markdown."),
    ] = Format.text,
    root: RootOpt = None,
) -> None:
    """Upgrade a site to another OpenStack release: check the path, set openstack.release
    in sites/SITE/site.yaml (comments kept) and build the site.

    Refused (exit 2, nothing written): an unsupported release, the same release, a
    downgrade, a skip that is not SLURP -> SLURP, a RabbitMQ jump kolla-ansible refuses.

    With --plan: the same checks, then the site rendered on both releases in scratch
    directories; prints the phases (Argo CD sync waves or Flux Kustomizations) and writes
    nothing. -o markdown is for a pull request description.

    Examples: kkc upgrade site-a --to 2026.1 ; kkc upgrade site-b --to 2026.2 --plan"""
    if plan:
        found = upgradeplan.build_plan(_root(root), site, to, crd_dir)
        _warn(found.warnings)
        sys.stdout.write(upgradeplan.REPORTS[output.value](found))
        return
    if output is Format.markdown:
        raise UsageError("-o markdown needs --plan")
    done = upgrade.upgrade(_root(root), site, to, crd_dir)
    _warn(done.result.warnings)
    if output is Format.json:
        _json(upgrade.report(done))
        return
    for line in upgrade.summary(done):
        typer.echo(line)


@app.command("rotate")
def rotate_cmd(
    site: SiteArg,
    names: Annotated[
        list[str],
        typer.Argument(
            metavar="SECRET...",
            help="kolla-ansible passwords.yml names as `kkc secrets SITE` lists them, e.g. "
            "keystone_database_password, nova_keystone_password, rabbitmq_password.",
        ),
    ],
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Print, in the controller's order, which ExternalSecrets refresh, which "
            "Jobs re-run and which workloads roll, and the steps that are yours; write "
            "nothing.",
        ),
    ] = False,
    crd_dir: CrdOpt = None,
    output: Annotated[
        Format, typer.Option("--output", "-o", help="text, markdown or json.")
    ] = Format.text,
    root: RootOpt = None,
) -> None:
    """Rotate credentials as a reviewable change: bump each SECRET's generation in
    secrets.rotation of sites/SITE/site.yaml (comments kept) and build the site.

    The new generation refreshes the ExternalSecrets that fetch it, re-runs the Jobs that
    apply it (db-init, ks-register, keystone bootstrap) and rolls the workloads that read
    it, in stage order. The values stay in the secret store: write the new one there
    right before merging. An unknown name is refused (exit 2, KKC154, with did-you-mean).

    Examples: kkc rotate site-a nova_database_password --plan ;
    kkc rotate site-a glance_keystone_password -o markdown"""
    done = rotate.rotate(_root(root), site, names, plan_only=plan, crd_dir=crd_dir)
    if done.result is not None:
        _warn(done.result.warnings)
    sys.stdout.write(rotate.REPORTS[output.value](done))


@app.command("restore")
def restore_cmd(
    site: SiteArg,
    backup: Annotated[
        str,
        typer.Option(
            "--from", metavar="BACKUP", help="A Backup of the site's output (mariadb-backup)."
        ),
    ],
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Print the Restore resource and the ordered steps around it; write nothing "
            "(required: kkc applies nothing).",
        ),
    ] = False,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", metavar="TIME", help="Restore the newest backup at or before TIME (RFC 3339)."
        ),
    ] = None,
    database: Annotated[
        str | None, typer.Option("--database", help="Restore this one database only.")
    ] = None,
    crd_dir: CrdOpt = None,
    output: Annotated[
        Format, typer.Option("--output", "-o", help="text, markdown or json.")
    ] = Format.text,
    root: RootOpt = None,
) -> None:
    """Plan the restore of a mariadb-operator backup into a site: the Restore resource
    (validated against its CRD) and what stops first, in which order, and how the site
    resumes. Writes nothing; provider kolla is refused (KKC189) with the documented steps.

    Examples: kkc restore site-a-ha --from mariadb-backup --plan ;
    kkc restore site-a-ha --from mariadb-backup --at 2026-12-08T02:15:00Z --plan -o markdown"""
    if not plan:
        raise UsageError(
            "kkc restore only plans: pass --plan (the Restore is a one-off action you apply "
            "yourself, not part of the site's output; docs/backup-restore.md)"
        )
    found = restore.plan(_root(root), site, backup, at=at, database=database, crd_dir=crd_dir)
    sys.stdout.write(restore.REPORTS[output.value](found))


@app.command("render")
def render_cmd(site: SiteArg, crd_dir: CrdOpt = None, root: RootOpt = None) -> None:
    """Print the rendered, validated manifests of a site.

    This is what the controller will apply. Writes nothing."""
    rendered = pipeline.render_site(_root(root), site, crd_dir)
    _warn(rendered.warnings)
    sys.stdout.write(rendered.manifests)


@app.command("lint")
def lint_cmd(
    ctx: typer.Context,
    sites: SitesArg = None,
    all_sites: AllOpt = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when there is any warning.")
    ] = False,
    crd_dir: CrdOpt = None,
    jobs: JobsOpt = None,
    shard: ShardOpt = None,
    output: OutputOpt = Output.text,
    root: RootOpt = None,
) -> None:
    """Validate sites as `build` does, writing nothing, plus the slower checks.

    On top of every build check: each listed overlay must change something for the site
    (KKC129; one extra kustomize build per overlay). Warnings go to stderr; with
    --strict any warning fails (exit 1), for CI. With -o json: {"sites": [{site, objects,
    warnings}], "problems": [every warning, with severity "warning"]} on stdout.

    Example: kkc lint --strict"""
    _progress(ctx, "lint", output is Output.json)
    done = overlaylint.run(
        _root(root),
        sites or [],
        all_sites=all_sites,
        strict=strict,
        crd_dir=crd_dir,
        jobs=_jobs(jobs),
        shard=fleet.parse_shard(shard),
    )
    if output is Output.json:
        _json(done.as_json())
    else:
        for site in done.sites:
            _warn(site.warnings)
            typer.echo(site.line)
    done.verdict()


class StreamFormat(StrEnum):
    yaml = "yaml"
    text = "text"  # the text form of a stream of objects: yaml
    json = "json"


BootstrapSitesArg = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="SITE",
        help="The site (one); with --applicationset, the sites (default: every site).",
        show_default=False,
    ),
]
ApplicationSetOpt = Annotated[
    bool,
    typer.Option(
        "--applicationset",
        help="Print one Argo CD ApplicationSet (and the AppProjects) that generates the "
        "Application of every named Argo CD site, instead of one site's objects. Flux "
        "sites are left out, with a note on stderr.",
    ),
]


@app.command("bootstrap")
def bootstrap_cmd(
    sites: BootstrapSitesArg = None,
    all_sites: Annotated[
        bool, typer.Option("--all", help="With --applicationset: every site under sites/.")
    ] = False,
    applicationset: ApplicationSetOpt = False,
    name: Annotated[
        str,
        typer.Option(
            "--name", metavar="NAME", help="With --applicationset: the ApplicationSet's name."
        ),
    ] = gitops.APPSET_NAME,
    write: Annotated[
        bool,
        typer.Option(
            "--write",
            help="Also write deploy/SITE/ as `kkc build SITE` does (bootstrap.yaml is part of "
            "every build), then print. Not with --applicationset.",
        ),
    ] = False,
    output: Annotated[
        StreamFormat,
        typer.Option(
            "--output",
            "-o",
            help="yaml (a multi-document stream; text is the same) or json (a v1 List).",
        ),
    ] = StreamFormat.yaml,
    crd_dir: CrdOpt = None,
    root: RootOpt = None,
) -> None:
    """Print the GitOps objects to apply once: `kkc bootstrap SITE | kubectl apply -f -`.

    Argo CD (gitops.engine: argocd): an AppProject limited to the site's repository and
    namespace, and one Application for deploy/SITE/ whose stages run in sync-wave order.
    Flux (gitops.engine: flux): a GitRepository and one Kustomization per stage, each
    depending on the one before. Every object is validated against its CRD schema
    (embedded in kkc; --crd-dir / KKC_CRD_DIR adds and overrides). From then on the
    controller deploys each commit of deploy/SITE/; the same objects are in
    deploy/SITE/bootstrap.yaml.

    With --applicationset, for a fleet: one ApplicationSet whose list generator has an
    element per Argo CD site (its project, repoURL, revision, path, namespace and sync
    policy), so each Application it generates equals the site's own; re-apply it when a
    site is added or removed. The sites must share gitops.namespace (KKC161).

    Examples:

    * kkc bootstrap site-a | kubectl apply -f -

    * kkc bootstrap --applicationset | kubectl apply -f -"""
    done = bootstrap.run(
        _root(root),
        sites or [],
        all_sites=all_sites,
        applicationset=applicationset,
        name=name,
        write=write,
        crd_dir=crd_dir,
    )
    for note in done.notes:
        typer.echo(note, err=True)
    _warn(done.warnings)
    if write:  # after the warnings, as `kkc build` prints them before it writes
        typer.echo(done.write(), err=True)
    if output is StreamFormat.json:
        _json({"apiVersion": "v1", "kind": "List", "items": done.objects})
        return
    sys.stdout.write(done.text.decode())


def _review_repo(repo: Path | None, branch: str | None) -> None:
    if branch and repo is None:
        raise UsageError("--branch needs --repo (the branch of the deploy repository to read)")


AgainstOpt = Annotated[
    str | None,
    typer.Option(
        "--against",
        metavar="REV",
        help="Compare with the output committed at this git revision "
        "(a commit, branch or tag; in CI: the PR's base commit); with --repo, a "
        "revision of the deploy repository. Default: HEAD.",
        show_default=False,
    ),
]
DiffOutputOpt = Annotated[
    Format,
    typer.Option(
        "--output",
        "-o",
        help="text; markdown (summary table and collapsible diffs, for a PR comment); "
        "json (the same as data).",
    ),
]
DiffFormatOpt = Annotated[
    Format | None,
    typer.Option(
        "--format",
        "-f",
        hidden=True,
        help="Deprecated: the old name of --output.",
        show_default=False,
    ),
]
MaxBytesOpt = Annotated[
    int | None,
    typer.Option(
        "--max-bytes",
        metavar="N",
        min=1,
        help="With -o markdown: at most N bytes. Whole per-object diff blocks are "
        "left out from the end, and a last line says how many (the tables stay).",
    ),
]


@app.command("diff")
def diff_cmd(
    ctx: typer.Context,
    sites: SitesArg = None,
    all_sites: AllOpt = False,
    against: AgainstOpt = None,
    output: DiffOutputOpt = Format.text,
    fmt: DiffFormatOpt = None,
    max_bytes: MaxBytesOpt = None,
    repo: ReviewRepoOpt = None,
    branch: ReviewBranchOpt = None,
    crd_dir: CrdOpt = None,
    jobs: JobsOpt = None,
    shard: ShardOpt = None,
    root: RootOpt = None,
) -> None:
    """Show how the rendered objects change: the sites rendered now against their committed
    deploy/SITE/ at REV (default HEAD). Writes nothing.

    Lists added, changed and removed objects (by kind, namespace and name) with a unified
    diff of each added or changed object's YAML. A generated ConfigMap whose hash suffix
    changed is shown as a change. Secret values are never shown: `<masked>`, or
    `<masked: changed>` where the value differs. Exit 1 when anything differs, 0 when not.
    Changes that destroy data (KKC157-KKC159) are marked DESTRUCTIVE at the top; changes
    the API server refuses to make in place (KKC156) too, and they make it exit 2.

    With --repo PATH, the output committed in that deploy repository is compared: at REV
    of it, or at the head of --branch NAME.

    Examples: kkc diff site-a ; kkc diff --against origin/main -o markdown ;
    kkc diff --repo ../deploy-repo --branch main"""
    if fmt is not None:
        explicit = ctx.get_parameter_source("output") is not ParameterSource.DEFAULT
        if explicit and fmt is not output:
            raise UsageError(f"--format {fmt} and --output {output} disagree; use --output")
        typer.echo("note: kkc diff --format is deprecated; use -o/--output", err=True)
        output = fmt
    if max_bytes is not None and output is not Format.markdown:
        raise UsageError("--max-bytes needs -o markdown")
    _review_repo(repo, branch)
    _progress(ctx, "diff", output is Format.json)
    text, diffs = diff.run(
        _root(root),
        sites or [],
        all_sites=all_sites or not sites,
        against=against,
        repo=repo,
        branch=branch,
        crd_dir=crd_dir,
        output=output.value,
        max_bytes=max_bytes,
        jobs=_jobs(jobs),
        shard=fleet.parse_shard(shard),
    )
    sys.stdout.write(text)
    diff.verdict(diffs)


CheckAgainstOpt = Annotated[
    str,
    typer.Option(
        "--against",
        metavar="REV",
        help="Compare with the output committed at REV for the day-two checks "
        "(KKC156-KKC159); in CI the pull request's base commit.",
    ),
]


@app.command("check")
def check_cmd(
    ctx: typer.Context,
    sites: SitesArg = None,
    all_sites: AllOpt = False,
    require_crds: Annotated[
        bool,
        typer.Option(
            "--require-crds/--no-require-crds",
            help="Refuse (KKC172, exit 2) custom resources of kinds no CRD schema covers "
            "(neither embedded in kkc nor in --crd-dir). --no-require-crds checks them "
            "without a schema (a warning per kind).",
        ),
    ] = True,
    repo: ReviewRepoOpt = None,
    branch: ReviewBranchOpt = None,
    against: CheckAgainstOpt = "HEAD",
    allow_destructive: AllowDestructiveOpt = False,
    crd_dir: CrdOpt = None,
    jobs: JobsOpt = None,
    shard: ShardOpt = None,
    output: OutputOpt = Output.text,
    root: RootOpt = None,
) -> None:
    """For CI and pre-commit: fail (exit 1) unless deploy/SITE/ is exactly what
    `kkc build` produces now, untouched by hand, and valid. Writes nothing.

    One line per problem, naming the site and file: stale, missing or obsolete files
    (KKC327), hand edits (KKC328), files kkc does not own (KKC329), sites never built or
    output of removed sites (KKC330), and invalid output (KKC300-KKC310). Warnings of the
    render go to stderr. Invalid site definitions are exit 2 as everywhere, and so are custom
    resources that no CRD schema covers (KKC172) unless --no-require-crds is given, and so
    are changes, compared with the output committed at --against REV (default HEAD), that
    the API server refuses in place or that destroy data (KKC156-KKC159) unless
    --allow-destructive is given.

    With --repo PATH, checks the output committed in that deploy repository (at the head
    of --branch NAME, default its HEAD) against what `kkc build --repo PATH [--branch NAME]`
    produces now, including the base/ and overlays/ copies the sites use.

    Examples: kkc check --all ; kkc check --repo ../deploy-repo --branch main"""
    _progress(ctx, "check", output is Output.json)
    done = check.run(
        _root(root),
        sites or [],
        all_sites=all_sites,
        repo=repo,
        branch=branch,
        crd_dir=crd_dir,
        require_crds=require_crds,
        against=against,
        allow_destructive=allow_destructive,
        jobs=_jobs(jobs),
        shard=fleet.parse_shard(shard),
    )
    if output is Output.json:
        _json(done.as_json())
    else:
        _warn(done.warnings)
        for line in done.lines():
            typer.echo(line)
    done.verdict()


@app.command("affected")
def affected_cmd(
    since: Annotated[
        str,
        typer.Option(
            "--since",
            metavar="REV",
            help="The git revision to compare the work tree with (in CI: the pull "
            "request's base commit, or the last commit built).",
            show_default=False,
        ),
    ],
    output: OutputOpt = Output.text,
    root: RootOpt = None,
) -> None:
    """List the sites whose inputs changed between REV and the work tree: their
    sites/SITE/ directory, sites/defaults.yaml, the overlays they list and every base/ and
    overlays/ directory their tree uses (a change to a base lists exactly the sites that
    use it), kkc's option catalogs and data when kkc lies in the repository, and the other
    sites of a shared Argo CD AppProject. Writes nothing.

    One site a line on stdout, for `kkc check $(kkc affected --since REV)`; a site removed
    since REV is a note on stderr. With -o json: {since, commit, sites: [{site,
    reasons}], removed, changed}.

    Examples: kkc affected --since origin/main ; kkc affected --since HEAD~1 -o json"""
    done = affected.run(_root(root), since)
    if output is Output.json:
        _json(done.as_json())
        return
    for note in done.notes():
        typer.echo(note, err=True)
    for line in done.lines():
        typer.echo(line)


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
    try:
        shown = show.run(_root(root), site, explain)
    except SiteInvalid as exc:  # what could be resolved, then the problems
        resolved = show.partial(exc, explain)
        if resolved is not None:
            if output is Output.json:  # one document: {"resolved": ..., "problems": [...]}
                exc.report = {"resolved": resolved.as_json()}
            else:
                typer.echo(resolved.text(), nl=False)
        raise
    if output is Output.json:
        _json(shown.as_json())
    else:
        typer.echo(shown.text(), nl=False)


@app.command("secrets")
def secrets_cmd(
    site: SiteArg,
    check_file: Annotated[
        Path | None,
        typer.Option(
            "--check",
            metavar="FILE",
            help="Compare with a listing of the store, offline: the JSON of `kubectl get "
            "externalsecrets -n NAMESPACE -o json`, or remote keys (a JSON list, or one per "
            "line). Prints what is missing or not synced, and what is unused; exit 1 when "
            "anything is missing.",
        ),
    ] = None,
    output: OutputOpt = Output.text,
    root: RootOpt = None,
) -> None:
    """List every Secret the site expects, its keys, and where each comes from.

    Prints names and references only, never values.

    Examples: kkc secrets site-a ; kubectl get externalsecrets -n openstack -o json >
    es.json && kkc secrets site-a --check es.json"""
    done = secretreqs.run(_root(root), site, check_file)
    _report(done, output)
    done.verdict()


@app.command("list")
def list_cmd(output: OutputOpt = Output.text, root: RootOpt = None) -> None:
    """List the sites of this repository and whether deploy/SITE/ exists."""
    rows = build.site_list(_root(root))
    if output is Output.json:
        _json(rows)
        return
    for r in rows:
        typer.echo(f"{r['site']}\t{'built' if r['built'] else 'not built'}")


@app.command("doctor")
def doctor_cmd(crd_dir: CrdOpt = None, output: OutputOpt = Output.text) -> None:
    """Show the kustomize engine kkc will use, its version, the other tools found, and the
    CRD schemas custom resources are validated against (embedded, and --crd-dir's)."""
    done = doctor.run(crd_dir)
    _report(done, output)


cache_app = typer.Typer(
    help="kkc's caches of kustomize builds and of rendered sites, keyed by the content of "
    "everything a result depends on: outside every repository, in $KKC_CACHE_DIR "
    "(default ~/.cache/kkc).",
    no_args_is_help=True,
)
app.add_typer(cache_app, name="cache")


@cache_app.command("clean")
def cache_clean_cmd(output: OutputOpt = Output.text) -> None:
    """Remove every entry of kkc's cache (only kkc's own areas of $KKC_CACHE_DIR)."""
    where, count, size = cache.clean()
    if output is Output.json:
        _json({"directory": str(where), "removed": count, "bytes": size})
        return
    typer.echo(f"{where}: removed {count} entries ({size / 1048576:.1f} MB)")


def main() -> None:
    app()
