"""`kkc diff`: what a change to the site definitions does to the rendered objects.

"After" is the site rendered now from the work tree (validated, as `kkc build` would).
"Before" is the committed deploy/<site>/ at a revision (default HEAD), materialised with the
bases and overlays of that revision into a temporary directory and built with kustomize.
Objects are matched by API group, kind, namespace and name; a generated ConfigMap or Secret
whose hash suffix changed is matched by its name without the suffix. Secret values never
appear: they are replaced by a fixed mask that only tells whether the value changed."""

from __future__ import annotations

import difflib
import html
import json
import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from . import build, fleet, gitrepo, pool, report, safety
from .errors import DifferenceFound, Problem, RefusedChange, UsageError
from .fleet import Fleet, Shard
from .generate import STAGE_LABEL, Provenance
from .model import STAGES, Site
from .pipeline import object_key, render, render_for_repo
from .yamlio import dump, load_stream

MASK = "<masked>"
MASK_CHANGED = "<masked: changed>"
# kustomize's name-hash suffix of generated ConfigMaps and Secrets: 10 characters from the
# alphabet of api/hasher.encode (hex digits with 0 1 3 a e replaced by g h k m t).
_HASH_SUFFIX = re.compile(r"^(?P<stem>.+)-[2456789bcdfghkmt]{10}$")
_GENERATED = {"ConfigMap", "Secret"}
ORDER = ("added", "changed", "removed")

Identity = tuple[str, str, str, str]  # API group, kind, namespace, name


@dataclass
class ObjectDiff:
    change: str  # added | changed | removed
    api_version: str
    kind: str
    namespace: str
    name: str
    previous_name: str | None = None  # a generated ConfigMap/Secret whose hash suffix changed
    diff: str = ""  # unified diff of the (masked) YAML; empty for removed objects
    stage: str = ""  # the kkc.openstack.org/stage label: where in the apply order
    reruns: list[str] = field(default_factory=list)  # an added or changed Job: why it runs

    @property
    def stem(self) -> str:
        """The name; for a generated object whose hash suffix changed, without the suffix."""
        m = _HASH_SUFFIX.match(self.name) if self.previous_name else None
        return m.group("stem") if m else self.name

    @property
    def key(self) -> str:
        meta = {"namespace": self.namespace, "name": self.stem}
        return object_key({"kind": self.kind, "metadata": meta})

    def label(self) -> str:
        if self.previous_name:
            return f"{self.key} ({self.previous_name} -> {self.name})"
        return self.key

    def as_dict(self) -> dict[str, Any]:
        return {
            "change": self.change,
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace or None,
            "name": self.name,
            "previousName": self.previous_name,
            "stage": self.stage or None,
            "reruns": self.reruns,
            "diff": self.diff,
        }


@dataclass
class SiteDiff:
    site: str
    against: str  # the revision as given, e.g. HEAD or origin/main
    commit: str | None  # what it resolved to; None in a repository without commits
    objects: list[ObjectDiff] = field(default_factory=list)
    findings: list[Problem] = field(default_factory=list)  # kkc.safety: refused, destructive

    def counts(self) -> dict[str, int]:
        return {c: sum(o.change == c for o in self.objects) for c in ORDER}

    @property
    def destructive(self) -> list[Problem]:
        return [p for p in self.findings if p.code in safety.DESTRUCTIVE]

    @property
    def refused(self) -> list[Problem]:
        """What the API server refuses to change in place (immutable fields)."""
        return [p for p in self.findings if p.code == safety.IMMUTABLE]

    @property
    def release_refused(self) -> list[Problem]:
        """A release change that `kkc build` refuses (KKC190, KKC195: as `kkc upgrade`)."""
        return [p for p in self.findings if p.code in safety.RELEASE_REFUSED]

    def as_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "against": self.against,
            "commit": self.commit,
            "summary": self.counts(),
            "destructive": bool(self.destructive),
            "destructiveChanges": report.entries(self.destructive),
            "immutableChanges": report.entries(self.refused),
            "refusedReleaseChanges": report.entries(self.release_refused),
            "objects": [o.as_dict() for o in self.objects],
        }


def _identity(obj: dict[str, Any]) -> Identity:
    meta = obj.get("metadata") or {}
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    return group, str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name"))


def _index(manifests: str) -> dict[Identity, dict[str, Any]]:
    return {_identity(o): o for o in load_stream(manifests) if isinstance(o, dict)}


def _mask(old: dict[str, Any] | None, new: dict[str, Any] | None) -> tuple[Any, Any]:
    """Copies of a Secret's two versions with every value of data/stringData masked; the
    new version says `<masked: changed>` where the value differs from the old one."""

    def masked(obj: dict[str, Any] | None, other: dict[str, Any] | None) -> Any:
        if obj is None or obj.get("kind") != "Secret":
            return obj
        obj = json.loads(json.dumps(obj))
        for section in ("data", "stringData"):
            values = obj.get(section)
            if not isinstance(values, dict):
                continue
            before = (other or {}).get(section) or {}
            for k, v in values.items():
                changed = other is not None and k in before and before[k] != v
                values[k] = MASK_CHANGED if changed else MASK
        return obj

    return masked(old, None), masked(new, old)


def _yaml(obj: dict[str, Any] | None) -> list[str]:
    if obj is None:
        return []
    # keys sorted at every level, so that only real changes show
    return dump(json.loads(json.dumps(obj, sort_keys=True))).splitlines(keepends=True)


def _unified(old: dict[str, Any] | None, new: dict[str, Any] | None, label: str) -> str:
    old, new = _mask(old, new)
    lines = difflib.unified_diff(
        _yaml(old),
        _yaml(new),
        fromfile=f"a/{label}" if old is not None else "/dev/null",
        tofile=f"b/{label}" if new is not None else "/dev/null",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _pair_generated(
    added: set[Identity], removed: set[Identity]
) -> list[tuple[Identity, Identity]]:
    """(old, new) pairs of generated ConfigMaps/Secrets that differ only in hash suffix."""

    def stems(ids: set[Identity]) -> dict[Identity, list[Identity]]:
        out: dict[Identity, list[Identity]] = {}
        for i in ids:
            m = _HASH_SUFFIX.match(i[3])
            if i[1] in _GENERATED and m:
                out.setdefault((*i[:3], m.group("stem")), []).append(i)
        return out

    old_stems, new_stems = stems(removed), stems(added)
    return [
        (old_stems[s][0], new_stems[s][0])
        for s in sorted(set(old_stems) & set(new_stems))
        if len(old_stems[s]) == 1 and len(new_stems[s]) == 1
    ]


def _stage(obj: dict[str, Any]) -> str:
    return str(((obj.get("metadata") or {}).get("labels") or {}).get(STAGE_LABEL) or "")


def _order(d: ObjectDiff) -> tuple[int, int, str]:
    """Apply order: by stage (objects of no known stage last), then change, then key."""
    stage = list(STAGES).index(d.stage) if d.stage in STAGES else len(STAGES)
    return stage, ORDER.index(d.change), d.key


def _containers(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = template.get("spec") or {}
    found = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    return {str(c.get("name")): c for c in found if isinstance(c, dict)}


def _sources(template: dict[str, Any]) -> dict[str, str]:
    """The ConfigMap or Secret each volume of a pod template mounts, by volume name."""
    out = {}
    for v in (template.get("spec") or {}).get("volumes") or []:
        ref = v.get("configMap") or v.get("secret") or {}
        name = ref.get("name") or ref.get("secretName")
        if name:
            out[str(v.get("name"))] = str(name)
    return out


def _renamed(old: str, new: str) -> str:
    """``stem (hash a -> b)`` for a generated object whose hash suffix changed."""
    a, b = _HASH_SUFFIX.match(old), _HASH_SUFFIX.match(new)
    if a and b and a.group("stem") == b.group("stem"):
        stem = a.group("stem")
        return f"{stem} (hash {old[len(stem) + 1 :]} -> {new[len(stem) + 1 :]})"
    return f"{old} -> {new}"


def job_reruns(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """Why a Job runs (again) after the sync: kkc has the controller replace every changed
    Job, so a new Job or a change of its pod template runs it once more."""
    if old is None:
        return ["new Job: it runs when its stage syncs"]
    a = (old.get("spec") or {}).get("template") or {}
    b = (new.get("spec") or {}).get("template") or {}
    if a == b:
        return [
            "metadata only: Argo CD re-creates it (Replace=true) and it runs again; Flux "
            "patches it in place"
        ]
    reasons = []
    was = _containers(a)
    for name, c in _containers(b).items():
        before = was.get(name)
        if before is None:
            reasons.append(f"new container {name}")
            continue
        if before.get("image") != c.get("image"):
            reasons.append(f"image of {name}: {before.get('image')} -> {c.get('image')}")
        if (before.get("command"), before.get("args")) != (c.get("command"), c.get("args")):
            reasons.append(f"command of {name}")
        if before.get("env") != c.get("env"):
            reasons.append(f"environment of {name}")
    old_src, new_src = _sources(a), _sources(b)
    for vol in sorted(set(old_src) & set(new_src)):
        if old_src[vol] != new_src[vol]:
            reasons.append(f"config {_renamed(old_src[vol], new_src[vol])}")
    return reasons or ["pod template changed"]


def compare(before: str, after: str) -> list[ObjectDiff]:
    """Object-level changes between two `kustomize build` outputs, in apply order."""
    old, new = _index(before), _index(after)
    added, removed = set(new) - set(old), set(old) - set(new)
    pairs = [(i, i) for i in set(old) & set(new) if old[i] != new[i]]
    for o, n in _pair_generated(added, removed):
        pairs.append((o, n))
        added.discard(n)
        removed.discard(o)
    out = []
    for o, n in pairs:
        d = ObjectDiff("changed", new[n].get("apiVersion", ""), n[1], n[2], n[3])
        d.previous_name = o[3] if o != n else None
        d.diff = _unified(old[o], new[n], d.key)
        d.stage = _stage(new[n])
        d.reruns = job_reruns(old[o], new[n]) if n[1] == "Job" else []
        out.append(d)
    for n in added:
        d = ObjectDiff("added", new[n].get("apiVersion", ""), n[1], n[2], n[3])
        d.diff = _unified(None, new[n], d.key)
        d.stage = _stage(new[n])
        d.reruns = job_reruns(None, new[n]) if n[1] == "Job" else []
        out.append(d)
    for o in removed:
        d = ObjectDiff("removed", old[o].get("apiVersion", ""), o[1], o[2], o[3])
        d.stage = _stage(old[o])
        out.append(d)
    return sorted(out, key=_order)


def _manifests(root: Path, crd_dir: str | None, prov: Provenance | None, site: Site) -> str:
    """The site rendered now: as `kkc build` renders it, or with ``prov`` (a deploy
    repository's provenance) as `kkc build --repo` does."""
    if prov is None:
        return render(root, site, crd_dir).manifests
    return render_for_repo(root, site, prov, crd_dir)[0].manifests


def diff_sites(
    root: Path,
    sites: list[Site],
    *,
    against: str = "HEAD",
    crd_dir: str | None,
    gone: bool = False,
    repo: Path | None = None,
    branch: str | None = None,
    jobs: int = 1,
    loaded: Fleet | None = None,
) -> list[SiteDiff]:
    """Each site rendered now (in ``jobs`` worker processes: :mod:`kkc.pool`) against its
    committed output at ``against``.

    With ``gone``, sites whose output exists at ``against`` but that have no site definition
    any more are included too (every object removed; with a shard, those of the shard).
    With ``repo``, the committed output is that deploy repository's (`kkc build --repo`), at
    ``against`` or the head of ``branch`` there, and the sites are rendered as `kkc build
    --repo` renders them. ``loaded``: the fleet ``sites`` come from; when a site failed to
    load there or fails to render, one error names every site that failed."""
    loaded = loaded or Fleet(root, [s.name for s in sites], sites)
    prov = None
    if repo is None:
        git_repo = gitrepo.open_repo(root, "kkc diff compares with committed output")
        commit = gitrepo.resolve(git_repo, against)
        top_dir = root
    else:
        git_repo, top_dir = build.open_deploy_repo(root, repo)
        where = f" in deploy repository {repo}"
        if branch:
            commit, against = gitrepo.branch_head(git_repo, branch, where), branch
        else:
            commit = gitrepo.resolve(git_repo, against, where=where)
        prov = build.repo_provenance(root, branch)
    outcomes = pool.run_all(
        partial(_manifests, root, crd_dir, prov), sites, jobs, [s.name for s in sites]
    )
    names = [s.name for s in sites]
    loaded.raise_failures(pool.failures(outcomes, names))
    after = {s.name: o.value for s, o in zip(sites, outcomes, strict=True)}

    deploy = top_dir / "deploy"
    keep = loaded.keep()
    extra = (
        fleet.in_shard(
            [n for n in gitrepo.subdirectories(git_repo, commit, deploy) if n not in keep],
            loaded.shard,
        )
        if gone
        else []
    )
    committed = safety.committed_outputs(git_repo, commit, top_dir, [*names, *extra], against)
    top = Path(git_repo.working_tree_dir or top_dir).resolve()
    deploy_rel = deploy.resolve().relative_to(top).as_posix()
    results = []
    for name, site in [*((s.name, s) for s in sites), *((n, None) for n in extra)]:
        before = committed.get(name, "")
        rendered = after[name] if site is not None else ""
        objects = compare(before, rendered)
        unsafe = safety.compare(before, rendered, site, safety.display(name)) if before else []
        if site is not None and commit is not None:
            release = safety.committed_release_change(commit, deploy_rel, site)
            unsafe = safety.without_repeats(release, unsafe)
        sha = commit.hexsha if commit else None
        results.append(SiteDiff(name, against, sha, objects, unsafe))
    return results


def run(
    root: Path,
    names: list[str],
    *,
    all_sites: bool,
    against: str | None,
    repo: Path | None,
    branch: str | None,
    crd_dir: str | None,
    output: str,
    max_bytes: int | None = None,
    jobs: int = 1,
    shard: Shard | None = None,
) -> tuple[str, list[SiteDiff]]:
    """`kkc diff`: (the report in ``output``, "text", "markdown" or "json"; each site's
    diff). ``all_sites``: every site, and the output of sites that are gone; ``shard``:
    those of the shard (:mod:`kkc.fleet`)."""
    if branch and against:
        raise UsageError("--against and --branch both name the revision to compare with")
    loaded = fleet.load(root, names, all_sites, shard)
    results = diff_sites(
        root,
        loaded.sites,
        against=against or "HEAD",
        crd_dir=crd_dir,
        gone=all_sites,
        repo=repo,
        branch=branch,
        jobs=jobs,
        loaded=loaded,
    )
    if output == "markdown":
        text = markdown_report(results, max_bytes)
    else:
        text = (json_report if output == "json" else text_report)(results)
    return text, results


# ---- reports ------------------------------------------------------------------------------


def _summary(d: SiteDiff) -> str:
    c = d.counts()
    return f"{c['added']} added, {c['changed']} changed, {c['removed']} removed"


def _against(d: SiteDiff) -> str:
    return f"{d.against} ({d.commit[:12]})" if d.commit else f"{d.against} (no commits)"


def verdict(diffs: list[SiteDiff]) -> None:
    """Exit 2 (RefusedChange) when a change would be refused by the API server, else 1
    (DifferenceFound) when anything differs; the report is printed already."""
    refused = [d.site for d in diffs if d.refused]
    if refused:
        raise RefusedChange(
            f"kkc diff: {', '.join(refused)}: changes the API server refuses to make in place"
        )
    refused = [d.site for d in diffs if d.release_refused]
    if refused:
        raise RefusedChange(f"kkc diff: {', '.join(refused)}: a release change kkc build refuses")
    if any(d.objects for d in diffs):
        raise DifferenceFound()


_DESTRUCTIVE_HEAD = "DESTRUCTIVE: {site}: `kkc build` refuses this without --allow-destructive"
_REFUSED_HEAD = "REFUSED BY THE API SERVER: {site}: the sync would fail on these changes"
_RELEASE_HEAD = "REFUSED BY KKC BUILD: {site}: a release change `kkc upgrade` would refuse"


def _warnings_head(diffs: list[SiteDiff]) -> list[tuple[str, list[Problem]]]:
    """(heading, findings) of every site with a destructive or refused change."""
    out = []
    for d in diffs:
        if d.destructive:
            out.append((_DESTRUCTIVE_HEAD.format(site=d.site), d.destructive))
        if d.refused:
            out.append((_REFUSED_HEAD.format(site=d.site), d.refused))
        if d.release_refused:
            out.append((_RELEASE_HEAD.format(site=d.site), d.release_refused))
    return out


def text_report(diffs: list[SiteDiff]) -> str:
    out = []
    for head, found in _warnings_head(diffs):
        out.append(f"{head}\n")
        out += [f"  {p}\n" for p in found]
    for d in diffs:
        if not d.objects:
            out.append(f"{d.site}: no changes against {_against(d)}\n")
            continue
        out.append(f"{d.site}: {_summary(d)} against {_against(d)}\n")
        stage = None
        for o in d.objects:
            if o.stage != stage or stage is None:
                stage = o.stage
                out.append(f"  {_stage_title(o.stage)}\n")
            out.append(f"    {o.change:8} {o.label()}\n")
        jobs = [o for o in d.objects if o.reruns]
        if jobs:
            out.append("  Jobs that run, in this order:\n")
            out += [f"    {o.key} ({o.stage or 'no stage'}): {'; '.join(o.reruns)}\n" for o in jobs]
        out += [o.diff for o in d.objects if o.diff]
    return "".join(out)


def _stage_title(stage: str) -> str:
    if stage not in STAGES:
        return "no stage" if not stage else f"stage {stage}"
    return f"stage {stage} ({list(STAGES).index(stage) + 1} of {len(STAGES)})"


def _fence(text: str) -> str:
    """A backtick fence longer than any backtick run in ``text``."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def markdown_report(diffs: list[SiteDiff], max_bytes: int | None = None) -> str:
    """A summary table per site and a collapsible diff per object, for a PR comment.

    With ``max_bytes``, whole per-object diff blocks are dropped from the end until the
    report (with a note saying how many were left out) fits; the tables always stay."""
    parts: list[tuple[bool, str]] = []  # (is an object's diff block, text)
    for head, found in _warnings_head(diffs):
        items = "".join(f"> - {p}\n" for p in found)
        parts.append((False, f"> [!CAUTION]\n> **{html.escape(head)}**\n>\n{items}\n"))
    for d in diffs:
        if not d.objects:
            parts.append((False, f"### `{d.site}`: no changes against `{_against(d)}`\n\n"))
            continue
        head = [f"### `{d.site}`: {_summary(d)} against `{_against(d)}`\n\n"]
        head.append(
            "| stage | change | kind | namespace | name |\n| --- | --- | --- | --- | --- |\n"
        )
        for o in d.objects:
            name = f"`{o.stem}`"
            if o.previous_name:
                name += f" (`{o.previous_name}` → `{o.name}`)"
            head.append(
                f"| {o.stage or '—'} | {o.change} | {o.kind} | {o.namespace or '—'} | {name} |\n"
            )
        jobs = [o for o in d.objects if o.reruns]
        if jobs:
            head.append("\n**Jobs that run**, in this order:\n\n")
            head += [
                f"- `{o.key}` ({o.stage or 'no stage'}): {html.escape('; '.join(o.reruns))}\n"
                for o in jobs
            ]
        parts.append((False, "".join(head) + "\n"))
        for o in d.objects:
            if not o.diff:
                continue
            fence = _fence(o.diff)
            parts.append(
                (
                    True,
                    f"<details><summary>{o.change} <code>{html.escape(o.label())}</code>"
                    f"</summary>\n\n{fence}diff\n{o.diff}{fence}\n\n</details>\n\n",
                )
            )
    size = sum(len(text.encode()) for _, text in parts)
    omitted = 0
    while max_bytes is not None and size + len(_omitted(omitted).encode()) > max_bytes:
        last = max((i for i, (block, _) in enumerate(parts) if block), default=None)
        if last is None:
            break  # only the tables are left: they stay
        size -= len(parts.pop(last)[1].encode())
        omitted += 1
    return "".join(text for _, text in parts) + _omitted(omitted)


def _omitted(count: int) -> str:
    if not count:
        return ""
    return (
        f"_{count} object diff{'s' if count > 1 else ''} omitted to keep this under the size "
        "limit; `kkc diff` prints them all._\n"
    )


def json_report(diffs: list[SiteDiff]) -> str:
    return json.dumps([d.as_dict() for d in diffs], indent=2, sort_keys=True) + "\n"
