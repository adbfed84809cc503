"""`kkc rotate SITE SECRET... [--plan]`: credential rotation as a reviewable change.

Each SECRET is a kolla-ansible passwords.yml name as `kkc secrets` lists it. Its rotation
generation in ``secrets.rotation`` of sites/SITE/site.yaml goes up by one (comments and
layout kept: :mod:`kkc.siteedit`), and the site is built as `kkc build SITE` builds it;
should the build fail, site.yaml gets its old bytes back. With ``--plan`` the edit is made
in memory only and the site rendered in a scratch directory: nothing is written.

What the new generation does to the output is :mod:`kkc.rotation`'s: the ExternalSecrets
that fetch the password refresh, the Jobs that apply it run again, the workloads that read
it roll, in the controller's stage order. The plan adds what kkc cannot render: the steps
that are yours (the MariaDB root password, the RabbitMQ user, Secrets of the ``existing``
back end) and what a one-phase rotation costs (the window in which old pods hold the old
value). No value is ever read: kkc knows names only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import build, pipeline, rotation, siteedit
from .errors import InputError, Problem, UsageError
from .loader import check_site_name, load_site
from .model import STAGES, Site
from .outputs import compute
from .yamlio import load_stream

CMDLINE = "<command line>"
_VERB = {
    "refresh": "refreshes",
    "re-run": "re-runs",
    "roll": "rolls",
    "next run": "next run",
    "no roll": "no roll",
}


def _next_generations(site: Site, names: list[str]) -> dict[str, int]:
    current = rotation.generations(site)
    return {n: current.get(n, 0) + 1 for n in dict.fromkeys(names)}


def _check(site: Site, names: list[str]) -> None:
    """KKC154 for every name that is not a password of the site (exit 2)."""
    if not names:
        raise UsageError("name one or more passwords to rotate (kkc secrets SITE lists them)")
    secrets = compute(site).all_secrets()
    problems = [
        Problem(CMDLINE, 1, 1, "KKC154", why)
        for why in (rotation.unknown_name(n, secrets) for n in dict.fromkeys(names))
        if why
    ]
    if problems:
        raise InputError(problems)


def edited_text(text: str, gens: dict[str, int], display: str) -> str:
    """site.yaml's text with secrets.rotation.<name> set to each generation of ``gens``."""
    for name, gen in gens.items():
        text = siteedit.set_value(text, ("secrets", "rotation", name), str(gen), display)
    return text


def _namespace(site: Site) -> str:
    return str(site.get("namespace"))


def _kind_notes(site: Site, name: str, found: list[rotation.Touch]) -> tuple[list[str], list[str]]:
    """(manual steps, notes) of rotating one password, by what it is."""
    ns = _namespace(site)
    reruns = [t for t in found if t.action == "re-run" and name in t.passwords]
    rolls = [t for t in found if t.action == "roll" and name in t.passwords]
    manual: list[str] = []
    notes: list[str] = []
    if name == "database_password":
        manual.append(
            f"{name} (MariaDB root): MariaDB has no second root password to switch to, and "
            "no Job can change it without the old one. Right after writing the new value "
            f"in the store, set it in the server: `kubectl exec -it -n {ns} mariadb-0 -c "
            "mariadb -- mariadb -u root -p` (old password), then `ALTER USER 'root'@'%' "
            "IDENTIFIED BY '<new>';` for every root account (`SELECT user, host FROM "
            "mysql.user WHERE user = 'root'`). Only the db-init containers use it; they run "
            "again when their Job's spec changes."
        )
    elif name == "rabbitmq_password":
        manual.append(
            f"{name} (RabbitMQ user openstack): kkc renders no Job that changes a RabbitMQ "
            "user's password (default_user/default_pass create it on the first start "
            "only). Right after writing the new value in the store and before the sync, "
            f"change it in the server: `kubectl exec -it -n {ns} rabbitmq-0 -c rabbitmq -- "
            "rabbitmqctl change_password openstack '<new>'`. Open connections stay up; "
            "an old pod that reconnects is refused until it has rolled."
        )
    for t in reruns:
        if name == "keystone_admin_password":
            notes.append(
                f"{name}: {t.label} resets it in stage {t.stage} (one phase: Keystone keeps "
                "one password per user). The ks-register Jobs sign in with it and are not "
                "re-run; their next run uses the new value. Give it to the admin's clients "
                "(clouds.yaml, openrc) after the sync."
            )
        elif "ks-register" in t.why:
            notes.append(
                f"{name}: one phase only. Keystone keeps one password per user, so the old "
                f"and the new one are never valid together: {t.label} sets the new one in "
                f"stage {t.stage}, and until the pods that read it have rolled "
                f"({len(rolls)} workloads) the old pods cannot get a token: expect "
                "authentication failures (HTTP 401/503) for as long as the roll takes. "
                "(A true two-phase rotation needs a second user to switch to; kkc renders "
                "none.)"
            )
        elif "db-init" in t.why:
            notes.append(
                f"{name}: one phase only (MariaDB has no dual passwords): {t.label} sets the "
                f"new one in stage {t.stage}; connections already open keep working, new "
                "connections of the old pods fail until they have rolled."
            )
    if not reruns and name not in ("database_password", "rabbitmq_password"):
        where = ", ".join(sorted({t.label for t in rolls})) or "nothing kkc renders"
        notes.append(
            f"{name}: no Job applies it; it is only read ({where}). Where it is also set "
            "outside the cluster (a Ceph key, say), change it there first."
        )
    return manual, notes


def _backend_steps(
    site: Site, secrets: dict[str, list[str]], gens: dict[str, int]
) -> tuple[list[str], list[str]]:
    """(manual steps, notes) of the secret back end: the Secrets of ``existing`` are
    yours to update; an ExternalSecret's refresh has a timing to know."""
    held = sorted({e for n in gens for e in secrets.get(n, [])})
    if site.get("secrets.backend") != "external-secrets":
        return [
            "secrets.backend existing: there is no ExternalSecret to refresh. Right before "
            f"the sync, put the new value into {', '.join(held)} in namespace "
            f"{_namespace(site)} yourself: the Jobs re-run and the pods roll as soon as "
            "the controller applies this commit."
        ], []
    return [], [
        "Write the new value under the same remote key right before merging: the "
        "ExternalSecrets also fetch it every secrets.refreshInterval, and a pod that "
        "restarts in between would read it early.",
        "The Jobs and pods of the new generation wait for the refreshed Secret: each "
        "container that applies or reads a rotated password reads the key "
        "kkc-rotation-<password>-<generation>, which only the refreshed ExternalSecret "
        "adds, and the kubelet starts it only once that key exists (meanwhile the new pod "
        "waits in CreateContainerConfigError and the old ones keep running).",
    ]


@dataclass
class Rotated:
    """`kkc rotate` (or its --plan): the plan, and the build when it was written."""

    plan: rotation.Rotation
    file: str
    result: build.BuildResult | None = None

    def as_json(self) -> dict[str, Any]:
        out = self.plan.as_json()
        out["file"] = self.file
        out["written"] = self.result is not None
        if self.result is not None:
            out["files"] = vars(self.result.files)
            out["objects"] = vars(self.result.objects)
        return out

    def lines(self) -> list[str]:
        out = text_lines(self.plan)
        if self.result is None:
            return [*out, "plan only: nothing written"]
        f, o = self.result.files, self.result.objects
        gens = ", ".join(f"{n} -> {g}" for n, g in self.plan.generations.items())
        return [
            f"{self.plan.site}: secrets.rotation {gens} in {self.file}",
            f"{self.plan.site}: wrote deploy/{self.plan.site}/ (files: {len(f.added)} added, "
            f"{len(f.changed)} changed, {len(f.removed)} removed; objects: {len(o.added)} "
            f"added, {len(o.changed)} changed, {len(o.removed)} removed)",
            *out,
            f"next: write the new values in the store, commit {self.file} and "
            f"deploy/{self.plan.site}/ together, and merge",
        ]


def _plan(site: Site, objects: list[dict[str, Any]], gens: dict[str, int]) -> rotation.Rotation:
    secrets = compute(site).all_secrets()
    found = rotation.touches(site, secrets, objects, set(gens))
    manual, notes = _backend_steps(site, rotation.rotatable(secrets), gens)
    for name in gens:
        m, n = _kind_notes(site, name, found)
        manual += m
        notes += n
    return rotation.Rotation(
        site.name, str(site.get("secrets.backend")), gens, found, manual, notes
    )


def rotate(
    root: Path, name: str, names: list[str], *, plan_only: bool, crd_dir: str | None
) -> Rotated:
    """Bump the rotation generation of ``names`` in sites/<name>/site.yaml and build the
    site (``plan_only``: in memory, render in scratch, write nothing)."""
    path = check_site_name(root, name)
    site = load_site(root, name)
    _check(site, names)
    gens = _next_generations(site, names)
    display = f"sites/{name}/site.yaml"
    original = path.read_bytes()
    text = edited_text(original.decode("utf-8"), gens, display)
    after = load_site(root, name, site_text=text)
    # rendered (and validated) before anything is written; the build reuses the cache
    rendered = pipeline.render(root, after, crd_dir)
    plan = _plan(after, load_stream(rendered.manifests), gens)
    if plan_only:
        return Rotated(plan, display)
    siteedit.write_atomic(path, text)
    try:
        [result] = build.build_sites(root, [load_site(root, name)], crd_dir=crd_dir, commit=False)
    except BaseException:
        path.write_bytes(original)
        raise
    return Rotated(plan, display, result)


def _by_stage(plan: rotation.Rotation) -> list[tuple[str, list[rotation.Touch]]]:
    stages = [s for s in STAGES if any(t.stage == s for t in plan.touches)]
    rest = [t for t in plan.touches if t.stage not in STAGES]
    out = [(s, [t for t in plan.touches if t.stage == s]) for s in stages]
    return out + ([("other", rest)] if rest else [])


def text_lines(plan: rotation.Rotation) -> list[str]:
    gens = ", ".join(f"{n} (generation {g})" for n, g in plan.generations.items())
    out = [f"{plan.site}: rotation of {gens}, in the controller's order:"]
    for number, (stage, found) in enumerate(_by_stage(plan), 1):
        out.append(f"{number}. stage {stage}")
        for t in found:
            out.append(f"   {_VERB[t.action]:10} {t.label} ({', '.join(t.passwords)}): {t.why}")
    if not plan.touches:
        out.append("   nothing in the output reads these passwords")
    if plan.manual:
        out.append("yours (kkc cannot render these):")
        out += [f"  - {m}" for m in plan.manual]
    if plan.notes:
        out.append("notes:")
        out += [f"  - {n}" for n in plan.notes]
    return out


def text_report(done: Rotated) -> str:
    return "\n".join(done.lines()) + "\n"


def markdown_report(done: Rotated) -> str:
    plan = done.plan
    gens = ", ".join(f"`{n}` (generation {g})" for n, g in plan.generations.items())
    out = [f"### Rotation on {plan.site}: {gens}", ""]
    out += [
        "| # | stage | action | object | passwords | why |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for number, (stage, found) in enumerate(_by_stage(plan), 1):
        for t in found:
            out.append(
                f"| {number} | {stage} | {_VERB[t.action]} | `{t.label}` | "
                f"{', '.join(t.passwords)} | {t.why} |"
            )
    for title, items in (("Yours (kkc cannot render these)", plan.manual), ("Notes", plan.notes)):
        if items:
            out += ["", f"**{title}**", ""] + [f"- {i}" for i in items]
    return "\n".join(out) + "\n"


def json_report(done: Rotated) -> str:
    return json.dumps(done.as_json(), indent=2, sort_keys=True) + "\n"


REPORTS = {"text": text_report, "markdown": markdown_report, "json": json_report}
