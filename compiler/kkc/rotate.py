"""`kkc rotate SITE SECRET... [--plan]`: credential rotation as a reviewable change.

Each SECRET is a kolla-ansible passwords.yml name as `kkc secrets` lists it (or a key set
kkc's Jobs keep: keystone-credential-keys, keystone-fernet-keys). Its rotation
generation in ``secrets.rotation`` of sites/SITE/site.yaml goes up by one (comments and
layout kept: :mod:`kkc.siteedit`), and the site is built as `kkc build SITE` builds it;
should the build fail, site.yaml gets its old bytes back. With ``--plan`` the edit is made
in memory only and the site rendered in a scratch directory: nothing is written.

What the new generation does to the output is :mod:`kkc.rotation`'s: the ExternalSecrets
that fetch the password refresh, the Jobs that apply it run again, the workloads that read
it roll, the retire Jobs of two-phase service users end it, in the controller's stage
order. The plan adds the phases of the credentials that have more than one, the steps that
are yours (the previous MariaDB root password, Secrets of the ``existing`` back end, the
servers of providers kkc renders no Job for) and what a one-phase rotation costs (the
window in which old pods hold the old value). No value is ever read: kkc knows names only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import build, pipeline, rotation, siteedit
from .errors import InputError, Problem, UsageError
from .loader import check_site_name, load_site
from .model import STAGES, Site, rabbitmq_operator
from .outputs import compute
from .services import SecretSpec
from .services.common import FIXED_SERVICE_USERS, previous_service_users, service_user
from .yamlio import load_stream

CMDLINE = "<command line>"
_VERB = {
    "refresh": "refreshes",
    "re-run": "re-runs",
    "roll": "rolls",
    "next run": "next run",
    "no roll": "no roll",
    "retire": "retires",
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


def _stages(touches: list[rotation.Touch]) -> str:
    stages = list(dict.fromkeys(t.stage for t in touches))
    return ("stage " if len(stages) == 1 else "stages ") + ", ".join(stages)


def _labels(touches: list[rotation.Touch]) -> str:
    return ", ".join(t.label for t in touches)


def _service_user_phases(
    site: Site, name: str, reruns: list[rotation.Touch], rolls, retires
) -> list[str]:
    """The phases of a two-phase service user rotation: the new generation's user, the
    roll to it, the retirement of the earlier ones."""
    svc = name.removesuffix("_keystone_password")
    user, old = service_user(site, svc), previous_service_users(site, svc)
    out = [
        f"1. add: {_labels(reruns)} ({_stages(reruns)}) creates the Keystone user {user} "
        f"with the new password and the roles of {svc}; {old[-1]} keeps the old password, "
        "so old and new pods both get tokens",
    ]
    if rolls:
        out.append(f"2. switch: {len(rolls)} workloads roll to {user} ({_stages(rolls)})")
    out.append(
        f"{len(out) + 1}. retire: {_labels(retires)} ({_stages(retires)}, after every roll) "
        f"deletes {', '.join(old)}: the old password stops working"
    )
    return out


def _phases(site: Site, name: str, found: list[rotation.Touch]) -> list[str]:
    """The phases of rotating ``name``, for the credentials that have more than one (empty:
    one phase, the stage order says it all)."""
    mine = [t for t in found if name in t.passwords]
    reruns = [t for t in mine if t.action == "re-run"]
    rolls = [t for t in mine if t.action == "roll"]
    retires = [t for t in mine if t.action == "retire"]
    if retires:
        return _service_user_phases(site, name, reruns, rolls, retires)
    if not reruns or name not in TWO_STEP:
        return []
    apply, then = TWO_STEP[name]
    out = [f"1. apply: {_labels(reruns)} ({_stages(reruns)}) {apply}"]
    if rolls:
        out.append(f"2. switch: {len(rolls)} workloads roll ({_stages(rolls)}); {then}")
    else:
        out.append(f"2. {then}")
    return out


# Credentials applied by a Job of their own, then read: what each phase does.
TWO_STEP = {
    "database_password": (
        "sets the new root password for every root account, signed in with the previous "
        "one (mariadb-secrets/root-password-previous; a re-run finds the new one applied)",
        "nothing rolls: only the db-init containers sign in as root, on their next run",
    ),
    "rabbitmq_password": (
        "runs rabbitmqctl change_password openstack against the running cluster (with the "
        "Erlang cookie); open AMQP connections stay up",
        "an old pod that reconnects before it has rolled is refused",
    ),
    "keystone-credential-keys": (
        "credential_migrate, then credential_rotate (the staged key, which every API pod "
        "already has, becomes primary; the old primary stays as secondary), the keys back "
        "into the Secret",
        "credential_migrate again: every credential encrypted with the new primary key. "
        "Nothing restarts: the API pods read the keys from their Secret volume",
    ),
    "keystone-fernet-keys": (
        "keystone-manage fernet_rotate now: the staged key becomes primary, a new staged "
        "key is added and the oldest secondary key is dropped",
        "nothing restarts: the API pods read the keys from their Secret volume",
    ),
}


OPERATOR_RABBITMQ_PASSWORD = "_rabbitmq_password"  # <svc>_rabbitmq_password: rabbitmq-operator


def _kind_notes(site: Site, name: str, found: list[rotation.Touch]) -> tuple[list[str], list[str]]:
    """(manual steps, notes) of rotating one password, by what it is."""
    ns = _namespace(site)
    reruns = [t for t in found if t.action == "re-run" and name in t.passwords]
    rolls = [t for t in found if t.action == "roll" and name in t.passwords]
    retires = [t for t in found if t.action == "retire" and name in t.passwords]
    manual: list[str] = []
    notes: list[str] = []
    if name == "database_password" and not reruns:
        manual.append(
            f"{name} (MariaDB root): kkc renders no Job that changes it with "
            "services.mariadb.provider mariadb-operator. Right after writing the new value "
            f"in the store, set it in the server: `kubectl exec -it -n {ns} mariadb-0 -c "
            "mariadb -- mariadb -u root -p` (old password), then `ALTER USER 'root'@'%' "
            "IDENTIFIED BY '<new>';` for every root account (`SELECT user, host FROM "
            "mysql.user WHERE user = 'root'`). Only the db-init containers use it; they run "
            "again when their Job's spec changes."
        )
    elif name == "database_password":
        manual.append(_root_previous(site))
    elif name == "rabbitmq_password" and not reruns:
        manual.append(
            f"{name} (RabbitMQ user openstack): kkc renders no Job that changes it with this "
            "RabbitMQ provider. Right after writing the new value in the store and before "
            f"the sync: `kubectl exec -it -n {ns} rabbitmq-0 -c rabbitmq -- rabbitmqctl "
            "change_password openstack '<new>'`. Open connections stay up; an old pod that "
            "reconnects is refused until it has rolled."
        )
    for t in reruns:
        notes += _rerun_notes(name, t, rolls, retires)
    if not reruns and rabbitmq_operator(site) and name.endswith(OPERATOR_RABBITMQ_PASSWORD):
        operator_user = name.removesuffix(OPERATOR_RABBITMQ_PASSWORD)
        where = ", ".join(sorted({t.label for t in rolls})) or "nothing kkc renders"
        notes.append(
            f"{name}: no Job applies it: RabbitMQ's messaging topology operator sets it on "
            f"the RabbitMQ user {operator_user} from Secret rabbitmq-user-{operator_user}, "
            f"which its ExternalSecret refreshes first; then its readers roll ({where})."
        )
    elif not reruns and name not in ("database_password", "rabbitmq_password"):
        where = ", ".join(sorted({t.label for t in rolls})) or "nothing kkc renders"
        notes.append(
            f"{name}: no Job applies it; it is only read ({where}). Where it is also set "
            "outside the cluster (a Ceph key, say), change it there first."
        )
    return manual, notes


def _root_previous(site: Site) -> str:
    """Where the MariaDB root password Job finds the previous value, by back end."""
    if site.get("secrets.backend") == "external-secrets":
        return (
            "database_password (MariaDB root): the Job signs in with the previous value, "
            "which the store must hold under database_password_previous (fetched into "
            "mariadb-secrets/root-password-previous while secrets.rotation.database_password "
            "is set): copy the current value there before writing the new one."
        )
    return (
        "database_password (MariaDB root): the Job signs in with the previous value: copy "
        "the current mariadb-secrets/root-password into the key root-password-previous "
        "before putting the new value into root-password."
    )


def _rerun_notes(name: str, t: rotation.Touch, rolls, retires) -> list[str]:
    """What a re-run Job of ``name`` costs: its window, or none."""
    if name == "keystone_admin_password":
        return [
            f"{name}: {t.label} resets it in stage {t.stage} (one phase: Keystone keeps "
            "one password per user). The ks-register Jobs sign in with it and are not "
            "re-run; their next run uses the new value. Give it to the admin's clients "
            "(clouds.yaml, openrc) after the sync."
        ]
    if "ks-register" in t.why and retires:
        return [
            f"{name}: two phases, no window: a new Keystone user per generation, so the old "
            "pods keep their working user and password until the retire Job in stage "
            "finish, which runs after every roll. A site patch or anything outside kkc's "
            "output that signs in as the old user stops working then."
        ]
    if "ks-register" in t.why:
        svc = name.removesuffix("_keystone_password")
        why = FIXED_SERVICE_USERS.get(svc) or (
            "the stack domain admin is one user that heat.conf names, and kkc does not "
            "render a second one for it yet"
        )
        return [
            f"{name}: one phase only ({why}, so the user cannot be replaced). Keystone "
            f"keeps one password per user: {t.label} sets the new one in stage {t.stage}, "
            f"and until the pods that read it have rolled ({len(rolls)} workloads) the old "
            "pods cannot get a token: expect authentication failures (HTTP 401/503) for as "
            "long as the roll takes."
        ]
    if "db-init" in t.why:
        return [
            f"{name}: one phase only (MariaDB has no dual passwords): {t.label} sets the "
            f"new one in stage {t.stage}; connections already open keep working, new "
            "connections of the old pods fail until they have rolled."
        ]
    return []


def _backend_steps(
    site: Site, specs: list[SecretSpec], gens: dict[str, int]
) -> tuple[list[str], list[str]]:
    """(manual steps, notes) of the secret back end: the Secrets of ``existing`` are
    yours to update; an ExternalSecret's refresh has a timing to know."""
    secrets = rotation.rotatable(specs)
    held = sorted({e for n in gens for e in secrets.get(n, [])})
    if not held:  # key sets only: kkc's Jobs create and rotate them in the cluster
        return [], []
    if site.get("secrets.backend") != "external-secrets":
        made = sorted(
            f"{spec.name}/{k.key}"
            for spec in specs
            if not spec.created_by
            for k in spec.keys
            if k.template and rotation.key_sources(spec).get(k.key, set()) & set(gens)
        )
        again = (
            f", and render again from their templates (`kkc secrets {site.name} -o json`) "
            f"the keys made from it: {', '.join(made)}"
            if made
            else ""
        )
        return [
            "secrets.backend existing: there is no ExternalSecret to refresh. Right before "
            f"the sync, put the new value into {', '.join(held)} in namespace "
            f"{_namespace(site)} yourself{again}: the Jobs re-run and the pods roll as soon "
            "as the controller applies this commit."
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
    manual, notes = _backend_steps(site, secrets, gens)
    for name in gens:
        m, n = _kind_notes(site, name, found)
        manual += m
        notes += n
    phases = {n: p for n in gens if (p := _phases(site, n, found))}
    return rotation.Rotation(
        site.name, str(site.get("secrets.backend")), gens, found, manual, notes, phases
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
    if plan.phases:
        out.append("phases:")
        for name, steps in plan.phases.items():
            out.append(f"  {name}:")
            out += [f"    {step}" for step in steps]
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
    if plan.phases:
        out += ["", "**Phases**", ""]
        for name, steps in plan.phases.items():
            out += [f"- `{name}`:"] + [f"  {step}" for step in steps]
    for title, items in (("Yours (kkc cannot render these)", plan.manual), ("Notes", plan.notes)):
        if items:
            out += ["", f"**{title}**", ""] + [f"- {i}" for i in items]
    return "\n".join(out) + "\n"


def json_report(done: Rotated) -> str:
    return json.dumps(done.as_json(), indent=2, sort_keys=True) + "\n"


REPORTS = {"text": text_report, "markdown": markdown_report, "json": json_report}
