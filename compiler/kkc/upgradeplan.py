"""`kkc upgrade SITE --to RELEASE --plan`: the upgrade as the site's controller will run it,
for review, writing nothing.

The path is checked as `kkc upgrade` checks it (kkc.upgrade.check). Then the site is
rendered twice in scratch directories, as the read-only commands render (kkc.pipeline): as
it is, and with openstack.release set to the target (the site.yaml text edited in memory
by kkc.upgrade.set_release). The plan is read from those two outputs, not from kkc's own
stage list: the phases are the stages in the controller's order (Argo CD sync waves of the
objects, or the Flux Kustomizations of bootstrap.yaml and their dependsOn chain); each
phase has its Jobs with the command of every step (from the Kolla config.json each step
mounts), the workloads whose pod template changes (with their image changes), the gate
the controller waits for before the next phase, and what cannot be undone once the phase
has run (contract migrations, online data migrations, RabbitMQ feature flags, queue type
changes).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import pipeline, upgrade, upgradepath
from .errors import Problem
from .loader import load_site
from .model import STAGES
from .yamlio import load_stream

STAGE = "kkc.openstack.org/stage"
WAVE = "argocd.argoproj.io/sync-wave"
ROLLING = ("StatefulSet", "Deployment", "DaemonSet")
KOLLA_CONFIG = "/var/lib/kolla/config_files"
# oslo.messaging options that change how queues are declared: queues of the old type must
# be deleted for the new one (kolla-ansible's queue migration runs on the source release)
_QUEUE_OPTIONS = re.compile(
    r"^\s*(rabbit_quorum_queue|rabbit_transient_quorum_queue|rabbit_stream_fanout|"
    r"rabbit_ha_queues|use_queue_manager)\s*=.*$",
    re.M,
)


@dataclass
class Job:
    name: str
    change: str  # new | re-runs: why | unchanged
    steps: list[str]  # "step: command"


@dataclass
class Roll:
    workload: str  # Kind/name
    change: str  # new | images | pod template
    images: list[str]  # "container: old -> new"


@dataclass
class Phase:
    number: int
    stage: str
    controller: str  # "sync wave 10" | "Kustomization site-b-db"
    purpose: str
    jobs: list[Job] = field(default_factory=list)
    rolls: list[Roll] = field(default_factory=list)
    gate: str = ""
    irreversible: list[str] = field(default_factory=list)


@dataclass
class Plan:
    site: str
    current: str
    target: str
    engine: str
    phases: list[Phase]
    notes: list[str]
    warnings: list[Problem] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "from": self.current,
            "to": self.target,
            "engine": self.engine,
            "phases": [asdict(p) for p in self.phases],
            "notes": self.notes,
        }


def _objects(manifests: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (o["kind"], o["metadata"]["name"]): o
        for o in load_stream(manifests)
        if isinstance(o, dict) and "metadata" in o
    }


def _stage(obj: dict[str, Any]) -> str | None:
    return (obj["metadata"].get("labels") or {}).get(STAGE)


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    return ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    pod = _pod(obj)
    return [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]


def _command(container: dict[str, Any], pod: dict[str, Any], cms: dict[str, Any]) -> str:
    """What the container runs: the command of the Kolla config.json it mounts, else its
    own command and args."""
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        if mount["mountPath"] == KOLLA_CONFIG:
            name = (volumes.get(mount["name"], {}).get("configMap") or {}).get("name")
            data = (cms.get(name) or {}).get("data") or {}
            if "config.json" in data:
                return str(json.loads(data["config.json"]).get("command", ""))
    return " ".join([*(container.get("command") or []), *(container.get("args") or [])])


def _job(name: str, new: dict[str, Any], old: dict[str, Any] | None, cms: dict) -> Job:
    """A Job of the target's output: ``change`` says whether the controller runs it (a
    changed Job is replaced, so it runs again) and why."""
    pod = _pod(new)
    steps = [f"{c['name']}: {_command(c, pod, cms)}" for c in _containers(new)]
    if old is None:
        change = "new"
    elif old.get("spec") == new.get("spec"):
        change = "unchanged"
    elif _images(old) != _images(new):
        change = "re-runs: new images"
    else:
        change = "re-runs: its spec changed (config)"
    return Job(name, change, steps)


def _images(obj: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["image"] for c in _containers(obj)}


def _roll(key: tuple[str, str], new: dict[str, Any], old: dict[str, Any] | None) -> Roll | None:
    if old is not None and _pod(old) == _pod(new) and old.get("spec") == new.get("spec"):
        return None
    workload = f"{key[0]}/{key[1]}"
    if old is None:
        return Roll(workload, "new", [])
    before, after = _images(old), _images(new)
    changed = [
        f"{c}: {before[c].rsplit('/', 1)[-1]} -> {after[c].rsplit('/', 1)[-1]}"
        for c in after
        if c in before and before[c] != after[c]
    ]
    return Roll(workload, "images" if changed else "pod template", changed)


def _job_irreversible(job: Job) -> list[str]:
    out = []
    for step in job.steps:
        name, command = step.split(": ", 1)
        where = f"{job.name}, step {name}"
        if "--contract" in command or command.endswith(" db contract"):
            out.append(
                f"{where} (contract migration): drops what the old release's code reads; "
                "after it the old release cannot run on this database"
            )
        elif "online_data_migrations" in command:
            out.append(
                f"{where} (online data migrations): rows are rewritten in the new release's "
                "format; only a database backup brings the old ones back"
            )
        elif command.endswith((" upgrade heads", "-manage db_sync")):
            out.append(
                f"{where} ({command.rsplit(' ', 2)[-1] if 'heads' in command else 'db_sync'}): "
                "expand and contract in one step, before the service's pods roll (its old "
                "pods run on the contracted schema until they are replaced)"
            )
    return out


def _phase_order(tree: dict[str, bytes], objects: dict, stages: list[str]) -> dict[str, Any]:
    """Stage -> the controller's unit for it: a Flux Kustomization (from bootstrap.yaml), or
    the Argo CD sync wave its objects carry."""
    boot = load_stream(tree.get("bootstrap.yaml", b"").decode())
    flux = {
        k["spec"]["path"].rsplit("/", 1)[-1]: k
        for k in boot
        if isinstance(k, dict) and k.get("kind") == "Kustomization"
    }
    if flux:
        return {s: flux[s] for s in stages if s in flux}
    waves: dict[str, Any] = {}
    for obj in objects.values():
        stage, wave = _stage(obj), (obj["metadata"].get("annotations") or {}).get(WAVE)
        if stage in stages and wave is not None:
            waves.setdefault(stage, int(wave))
    return waves


# The step of a schema Job that runs the service's own upgrade checks (kkc.services.nova).
CHECK_STEP = "upgrade-check"


def _gate(unit: Any, following: Any, flux: bool) -> str:
    if flux:
        spec = unit["spec"]
        checks = ", ".join(f"{c['kind']}/{c['name']}" for c in spec.get("healthChecks") or [])
        wait = (
            "wait: true (every object it applies Ready, Jobs completed)"
            if spec.get("wait")
            else "wait: false"
        )
        then = (
            f"before Kustomization {following['metadata']['name']} (dependsOn) starts"
            if following is not None
            else "and the upgrade is complete"
        )
        extra = f"; healthChecks: {checks}" if checks else ""
        return (
            f"Kustomization {unit['metadata']['name']} Ready: {wait}{extra}, within timeout "
            f"{spec.get('timeout', '')}, {then}"
        )
    then = (
        f"before sync wave {following} starts"
        if following is not None
        else ("and the upgrade is complete")
    )
    return (
        f"sync wave {unit} Healthy: Deployments, StatefulSets and DaemonSets rolled out "
        f"and ready, Jobs completed, {then}"
    )


def _queue_lines(objects: dict) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for (kind, _name), obj in objects.items():
        if kind != "ConfigMap":
            continue
        for text in (obj.get("data") or {}).values():
            for m in _QUEUE_OPTIONS.finditer(str(text)):
                out.setdefault(_stage(obj) or "", set()).add(m.group(0).strip())
    return out


def build_plan(root: Path, name: str, target: str, crd_dir: str | None) -> Plan:
    """The plan of upgrading site ``name`` to ``target``. Writes nothing."""
    site = load_site(root, name)
    warnings = upgrade.check(site, target)
    current = site.get("openstack.release")
    display = f"sites/{name}/site.yaml"
    text = (root / display).read_text(encoding="utf-8")
    moved = load_site(root, name, site_text=upgrade.set_release(text, target, display))
    before = pipeline.render(root, site, crd_dir)
    after = pipeline.render(root, moved, crd_dir)
    old, new = _objects(before.manifests), _objects(after.manifests)
    stages = [s for s in STAGES if any(_stage(o) == s for o in new.values())]
    units = _phase_order(after.tree, new, stages)
    flux = site.get("gitops.engine") == "flux"
    ordered = sorted(units, key=lambda s: (_depth(units, s) if flux else units[s], s))
    cms = {k[1]: o for k, o in new.items() if k[0] == "ConfigMap"}
    phases = []
    for i, stage in enumerate(ordered):
        unit = units[stage]
        following = units[ordered[i + 1]] if i + 1 < len(ordered) else None
        phase = Phase(
            i + 1,
            stage,
            f"Kustomization {unit['metadata']['name']}" if flux else f"sync wave {unit}",
            STAGES[stage],
            gate=_gate(unit, following, flux),
        )
        for key in sorted(k for k in new if _stage(new[k]) == stage):
            if key[0] == "Job":
                job = _job(key[1], new[key], old.get(key), cms)
                phase.jobs.append(job)
                phase.irreversible += _job_irreversible(job) if job.change != "unchanged" else []
                if any(step.startswith(f"{CHECK_STEP}: ") for step in job.steps):
                    phase.gate = (
                        f"{job.name}'s {CHECK_STEP} step (`{job.name.split('-')[0]}-status "
                        "upgrade check` with the new code, before the migrations) passes: exit "
                        "codes other than 0 and 1 fail the Job and stop the upgrade here; "
                        f"{phase.gate}"
                    )
            elif key[0] in ROLLING and (roll := _roll(key, new[key], old.get(key))):
                phase.rolls.append(roll)
        phases.append(phase)
    notes = _notes(site, current, target, phases, old, new)
    return Plan(name, current, target, "flux" if flux else "argocd", phases, notes, warnings)


def _depth(units: dict[str, Any], stage: str) -> int:
    by_name = {u["metadata"]["name"]: s for s, u in units.items()}
    deps = [by_name[d["name"]] for d in units[stage]["spec"].get("dependsOn") or []]
    return 1 + max((_depth(units, d) for d in deps if d in units), default=-1)


def _notes(
    site: Any, current: str, target: str, phases: list[Phase], old: dict, new: dict
) -> list[str]:
    """RabbitMQ's irreversible steps (added to the phase that rolls it) and what the plan
    cannot show."""
    facts = upgradepath.facts()
    rabbit_old, rabbit_new = facts.rabbitmq[current], facts.rabbitmq[target]
    for phase in phases:
        if any(r.workload == "StatefulSet/rabbitmq" and r.change == "images" for r in phase.rolls):
            phase.irreversible.append(
                f"RabbitMQ {rabbit_old} -> {rabbit_new}: the old pod's preStop hook enables "
                f"every stable feature flag of {rabbit_old} before the new image starts on its "
                "data (rabbitmqctl enable_feature_flag all); enabled feature flags cannot be "
                "disabled: after the roll the old image refuses to start on the node's data"
            )
    old_q, new_q = _queue_lines(old), _queue_lines(new)
    for phase in phases:
        if old_q.get(phase.stage, set()) != new_q.get(phase.stage, set()):
            phase.irreversible.append(
                "queue type change (" + ", ".join(sorted(new_q.get(phase.stage, set()))) + "): "
                "queues declared with the old type must be deleted for the new one; "
                "kolla-ansible migrates them on the source release"
            )
    notes = [
        f"Nothing is written. Apply with: kkc upgrade {site.name} --to {target}, review "
        "`git diff`, commit sites/ and deploy/ together.",
        "Take a database backup before merging: a revert after the finish phase cannot undo "
        "the contract and online data migrations (docs/day-two.md).",
    ]
    return notes


# ---- reports ------------------------------------------------------------------------------


def text_report(plan: Plan) -> str:
    engine = "Flux Kustomizations (dependsOn)" if plan.engine == "flux" else "Argo CD sync waves"
    out = [f"{plan.site}: upgrade plan {plan.current} -> {plan.target}, in the order of {engine}"]
    for p in plan.phases:
        out.append("")
        out.append(f"{p.number}. {p.controller} (stages/{p.stage}): {p.purpose}")
        out.append("   jobs:" + ("" if p.jobs else " none"))
        for j in p.jobs:
            out.append(f"     {j.name} ({j.change})")
            out += [f"       {s}" for s in j.steps]
        out.append("   rolls:" + ("" if p.rolls else " nothing"))
        for r in p.rolls:
            out.append(f"     {r.workload} ({r.change})")
            out += [f"       {i}" for i in r.images]
        out.append(f"   gate: {p.gate}")
        if p.irreversible:
            out.append("   cannot be undone:")
            out += [f"     - {x}" for x in p.irreversible]
    out.append("")
    out += plan.notes
    return "\n".join(out) + "\n"


def markdown_report(plan: Plan) -> str:
    engine = "Flux Kustomizations" if plan.engine == "flux" else "Argo CD sync waves"
    out = [
        f"## Upgrade {plan.site}: {plan.current} → {plan.target}",
        "",
        f"Phases in the order of the {engine}.",
        "",
        "| # | phase | stage | jobs | rolls | cannot be undone |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for p in plan.phases:
        ran = sum(j.change != "unchanged" for j in p.jobs)
        out.append(
            f"| {p.number} | {p.controller} | `{p.stage}` | {ran} | {len(p.rolls)} | "
            f"{len(p.irreversible) or ''} |"
        )
    for p in plan.phases:
        out += ["", f"### {p.number}. {p.controller} (`stages/{p.stage}`)", "", p.purpose, ""]
        if p.jobs:
            out.append("**Jobs**")
            out.append("")
            for j in p.jobs:
                out.append(f"- `{j.name}` ({j.change})")
                out += [f"  - `{s}`" for s in j.steps]
            out.append("")
        if p.rolls:
            out.append("**Rolls**")
            out.append("")
            for r in p.rolls:
                images = f": {'; '.join(f'`{i}`' for i in r.images)}" if r.images else ""
                out.append(f"- `{r.workload}` ({r.change}){images}")
            out.append("")
        out.append(f"**Gate**: {p.gate}")
        if p.irreversible:
            out += ["", "**Cannot be undone**", ""]
            out += [f"- {x}" for x in p.irreversible]
    out.append("")
    out += [f"> {n}" if i == 0 else f">\n> {n}" for i, n in enumerate(plan.notes)]
    return "\n".join(out) + "\n"


def json_report(plan: Plan) -> str:
    return json.dumps(plan.as_json(), indent=2, sort_keys=True) + "\n"


REPORTS = {"text": text_report, "markdown": markdown_report, "json": json_report}
