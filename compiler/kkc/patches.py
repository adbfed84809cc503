"""Site patches, the escape hatch: ``sites/<site>/patches/*.yaml``, applied last.

A file is either a strategic-merge patch (a partial object: ``apiVersion``, ``kind``,
``metadata.name``) or a JSON 6902 patch written as ``{target: {kind, name, ...}, patch:
[operations]}``. kkc finds the stage that renders each patch's target and appends the
patch to that stage's ``patches`` (after kkc's own), so every stage still builds on its
own. A patch whose target is not rendered, or that would put literal data into a
Secret or a secret-looking environment variable, is an input error naming the file.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import InputError, Problem, did_you_mean
from .model import SECRETISH_KEY, Site, locate, single_replica
from .yamlio import dump, load_mapping, to_plain

OPS = ("add", "remove", "replace", "move", "copy", "test")
TARGET_KEYS = ("group", "version", "kind", "name", "namespace")
SECRET_PATHS = re.compile(r"^/(data|stringData)(/|$)")
# where an ExternalSecret holds the template of the Secret it creates
TEMPLATE_DATA = ("spec", "target", "template", "data")
# a ConfigMap or Secret from a generator carries a hash suffix; a patch names it without
HASH_SUFFIX = re.compile(r"-[a-z0-9]{10}$")
FORMS = (
    "a patch file is a strategic-merge patch (apiVersion, kind, metadata.name and the "
    "fields to change) or a JSON 6902 patch ({target: {kind, name}, patch: [operations]})"
)


@dataclass(frozen=True)
class SitePatch:
    file: str  # file name under sites/<site>/patches/
    display: str  # sites/<site>/patches/<file>
    target: dict[str, str]  # group/version/kind/name/namespace (name: a regex for JSON 6902)
    body: Any  # the strategic-merge patch, or the list of JSON 6902 operations
    where: tuple[int, int]  # line, col of the target in the file
    json6902: bool = field(default=False)
    ops_at: tuple[tuple[int, int], ...] = ()  # line, col of each JSON 6902 operation
    namespace_at: tuple[int, int] | None = None  # line, col of the namespace it names

    def in_stage(self) -> SitePatch:
        """The patch as a stage applies it: without the namespace it names (the site's, as
        ``route`` checked). A stage's objects get their namespace from the stage's
        kustomization, which kustomize applies after the patches, so a patch naming it
        would match nothing there."""
        if "namespace" not in self.target:
            return self
        target = {k: v for k, v in self.target.items() if k != "namespace"}
        body = self.body
        if not self.json6902:
            body = copy.deepcopy(body)
            del body["metadata"]["namespace"]
        return replace(self, target=target, body=body, namespace_at=None)

    def text(self) -> bytes:
        return dump(self.body).encode()

    def entry(self, rel: str) -> dict[str, Any]:
        """The stage kustomization's ``patches`` entry for this patch stored at ``rel``."""
        return {"path": rel, "target": dict(self.target)} if self.json6902 else {"path": rel}

    def matches(self, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
        have = {"group": group, "version": version, "kind": obj.get("kind")}
        if any(self.target.get(k) not in (None, have[k]) for k in have):
            return False
        if self.target.get("namespace") not in (None, meta.get("namespace")):
            return False
        name = str(meta.get("name", ""))
        names = {name, HASH_SUFFIX.sub("", name)} if have["kind"] in _GENERATED else {name}
        want = self.target.get("name", "")
        if self.json6902:
            return any(re.fullmatch(want, n) for n in names)
        return want in names


_GENERATED = ("ConfigMap", "Secret")


def _problem(
    display: str, doc: Any, path: tuple[Any, ...], code: str, msg: str, is_key: bool = False
) -> Problem:
    line, col = locate(doc, path, is_key)
    return Problem(display, line, col, code, msg)


def _secret_problems(display: str, doc: Any, plain: Any, target: dict[str, str]) -> list[Problem]:
    """Literal Secret data, or literal values of secret-looking environment variables."""
    problems = []
    is_secret = target.get("kind") == "Secret"
    if isinstance(plain, dict):  # strategic merge
        for key in ("data", "stringData"):
            if is_secret and plain.get(key):
                problems.append(
                    _problem(
                        display,
                        doc,
                        (key,),
                        "KKC142",
                        f"a patch may not put literal data into a Secret ({key}); secrets "
                        "come from the secret store (see `kkc secrets SITE`)",
                    )
                )
    else:  # JSON 6902 operations
        for i, op in enumerate(plain):
            if not isinstance(op, dict):
                continue
            if is_secret and SECRET_PATHS.match(str(op.get("path", ""))) and "value" in op:
                problems.append(
                    _problem(
                        display,
                        doc,
                        ("patch", i, "value"),
                        "KKC142",
                        f"a patch may not put literal data into a Secret ({op['path']}); "
                        "secrets come from the secret store (see `kkc secrets SITE`)",
                    )
                )

    if target.get("kind") == "ExternalSecret":
        if isinstance(plain, dict):
            problems += _template_literals(display, doc, (), plain, ())
        else:
            for i, op in enumerate(plain):
                if isinstance(op, dict) and "value" in op:
                    path = _tokens(str(op.get("path", "")))
                    problems += _template_literals(
                        display, doc, path, op["value"], ("patch", i, "value")
                    )

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        if isinstance(node, dict):
            name = node.get("name")
            if isinstance(name, str) and "value" in node and SECRETISH_KEY.search(name):
                problems.append(
                    _problem(
                        display,
                        doc,
                        (*path, "value"),
                        "KKC142",
                        f"environment variable {name} gets a literal value; take it from a "
                        "Secret (valueFrom.secretKeyRef)",
                    )
                )
            for key, value in node.items():
                walk(value, (*path, key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, (*path, i))

    walk(
        doc if isinstance(plain, dict) else doc.get("patch"),
        () if isinstance(plain, dict) else ("patch",),
    )
    return problems


def _template_literals(
    display: str, doc: Any, path: tuple[str, ...], value: Any, at: tuple[Any, ...]
) -> list[Problem]:
    """Values of an ExternalSecret's spec.target.template.data that ``value``, set at
    ``path`` of the object (found at ``at`` in the patch file), gives without a ``{{ }}``
    reference to the fetched data: literal secret data in the Secret it creates."""
    if path[: len(TEMPLATE_DATA)] != TEMPLATE_DATA[: len(path)]:
        return []
    if len(path) > len(TEMPLATE_DATA):  # one entry of the data
        entries = {path[len(TEMPLATE_DATA)]: (value, at)} if len(path) == 5 else {}
    else:
        node = value
        for key in TEMPLATE_DATA[len(path) :]:
            node = node.get(key) if isinstance(node, dict) else None
            at = (*at, key)
        entries = {k: (v, (*at, k)) for k, v in node.items()} if isinstance(node, dict) else {}
    return [
        _problem(
            display,
            doc,
            where,
            "KKC142",
            f"a patch may not put literal data into an ExternalSecret's template "
            f"(spec.target.template.data.{key}); a template value refers to the data the "
            "store returns ({{ .key }}); secrets come from the secret store "
            "(see `kkc secrets SITE`)",
        )
        for key, (entry, where) in entries.items()
        if entry is not None and not (isinstance(entry, str) and "{{" in entry)
    ]


def _tokens(pointer: str) -> tuple[str, ...]:
    """The reference tokens of a JSON pointer (RFC 6901: ~1 is /, ~0 is ~)."""
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:])


def _target_problems(display: str, doc: Any, target: Any) -> list[Problem]:
    """KKC140 of a JSON 6902 patch's ``target``: kind and name, and only known keys."""
    if not isinstance(target, dict) or not target.get("kind") or not target.get("name"):
        return [_problem(display, doc, ("target",), "KKC140", "target needs kind and name")]
    if set(target) - set(TARGET_KEYS):
        extra = sorted(set(target) - set(TARGET_KEYS))[0]
        return [
            _problem(
                display,
                doc,
                ("target", extra),
                "KKC140",
                f'target key "{extra}" is not supported (use {", ".join(TARGET_KEYS)})'
                + did_you_mean(extra, TARGET_KEYS),
                is_key=True,
            )
        ]
    return []


def _ops_problems(display: str, doc: Any, ops: Any) -> list[Problem]:
    """KKC140 of a JSON 6902 patch's operations: a list, each with an op and a path."""
    if not isinstance(ops, list) or not ops:
        return [_problem(display, doc, ("patch",), "KKC140", "patch must be a list of operations")]
    return [
        _problem(
            display,
            doc,
            ("patch", i),
            "KKC140",
            f'operation {i + 1} needs op ({", ".join(OPS)}) and a path starting with "/"',
        )
        for i, op in enumerate(ops)
        if not isinstance(op, dict)
        or op.get("op") not in OPS
        or not str(op.get("path", "")).startswith("/")
    ]


def _json_patch(
    path: Path, display: str, doc: Any, plain: dict[str, Any]
) -> tuple[SitePatch | None, list[Problem]]:
    """A ``{target, patch}`` file: JSON 6902 operations on one object."""
    target, ops = plain["target"], plain["patch"]
    problems = _target_problems(display, doc, target) + _ops_problems(display, doc, ops)
    if isinstance(target, dict) and isinstance(ops, list):
        target = {k: str(target[k]) for k in TARGET_KEYS if k in target}
        problems += _secret_problems(display, doc, ops, target)
    if problems:
        return None, problems
    ops_at = tuple(_where(doc, ("patch", i)) for i in range(len(ops)))
    where = _where(doc, ("target", "name"))
    ns_at = _where(doc, ("target", "namespace")) if "namespace" in target else None
    return SitePatch(path.name, display, target, ops, where, True, ops_at, ns_at), []


def _merge_patch(
    path: Path, display: str, doc: Any, plain: dict[str, Any]
) -> tuple[SitePatch | None, list[Problem]]:
    """A strategic-merge patch: a partial object, named by apiVersion, kind and name."""
    meta = plain.get("metadata")
    if (
        not plain.get("apiVersion")
        or not plain.get("kind")
        or not isinstance(meta, dict)
        or not meta.get("name")
    ):
        return None, [Problem(display, 1, 1, "KKC140", FORMS)]
    group, _, version = str(plain["apiVersion"]).rpartition("/")
    target = {
        "group": group,
        "version": version,
        "kind": str(plain["kind"]),
        "name": str(meta["name"]),
    }
    ns_at = None
    if meta.get("namespace"):
        target["namespace"] = str(meta["namespace"])
        ns_at = _where(doc, ("metadata", "namespace"))
    patch = SitePatch(
        path.name,
        display,
        target,
        plain,
        _where(doc, ("metadata", "name")),
        namespace_at=ns_at,
    )
    return patch, _secret_problems(display, doc, plain, target)


def _load_one(path: Path, display: str) -> tuple[SitePatch | None, list[Problem]]:
    """One patch file, of either form, checked."""
    doc = load_mapping(path, display)
    plain = to_plain(doc)
    if set(plain) == {"target", "patch"}:
        return _json_patch(path, display, doc, plain)
    return _merge_patch(path, display, doc, plain)


def _where(doc: Any, path: tuple[Any, ...]) -> tuple[int, int]:
    return locate(doc, path)


def load(root: Path, site_name: str) -> tuple[list[SitePatch], list[Problem]]:
    """Every ``*.yaml``/``*.yml`` under sites/<site>/patches/, in file-name order."""
    folder = root / "sites" / site_name / "patches"
    if not folder.is_dir():
        return [], []
    found, problems = [], []
    for path in sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml")):
        patch, errs = _load_one(path, f"sites/{site_name}/patches/{path.name}")
        problems += errs
        if patch and not errs:
            found.append(patch)
    return found, sorted(problems, key=lambda p: (p.path, p.line, p.col))


def route(
    site: Site, objects: list[dict[str, Any]], stage_label: str
) -> dict[str, list[SitePatch]]:
    """The stage of each patch's target in the rendered ``objects``; KKC141 when a patch
    matches nothing."""
    routed: dict[str, list[SitePatch]] = {}
    problems = []
    for patch in site.patches:
        stages = sorted(
            {
                ((o.get("metadata") or {}).get("labels") or {}).get(stage_label, "")
                for o in objects
                if patch.matches(o)
            }
        )
        elsewhere = sorted(
            {
                str((o.get("metadata") or {}).get("namespace") or "")
                for o in objects
                if not stages and patch.namespace_at and patch.in_stage().matches(o)
            }
        )
        if elsewhere:
            line, col = patch.namespace_at or patch.where
            kind, ns = patch.target["kind"], patch.target["namespace"]
            there = " and ".join(f"namespace {n}" if n else "no namespace" for n in elsewhere)
            problems.append(
                Problem(
                    patch.display,
                    line,
                    col,
                    "KKC141",
                    f'the patch target {kind}/{patch.target["name"]} is not in namespace "{ns}": '
                    f"site {site.name} renders it in {there} (leave the namespace out, or name "
                    "that one)",
                )
            )
        elif not stages:
            kind = patch.target["kind"]
            names = [
                HASH_SUFFIX.sub("", str((o.get("metadata") or {}).get("name", "")))
                if kind in _GENERATED
                else str((o.get("metadata") or {}).get("name", ""))
                for o in objects
                if o.get("kind") == kind
            ]
            line, col = patch.where
            problems.append(
                Problem(
                    patch.display,
                    line,
                    col,
                    "KKC141",
                    f"the patch target {kind}/{patch.target['name']} is not in the output of "
                    f"site {site.name}" + did_you_mean(patch.target["name"], names),
                )
            )
        for stage in stages:
            routed.setdefault(stage, []).append(patch.in_stage())
    problems += _dry_run(site.patches, objects)
    if problems:
        raise InputError(sorted(problems, key=lambda p: (p.path, p.line, p.col)))
    return routed


class _NoApply(Exception):
    """A JSON 6902 operation that kustomize refuses; the message says why."""


class _CannotTell(Exception):
    """An operation whose effect kkc does not model (a negative list index)."""


def _dry_run(patches: list[SitePatch], objects: list[dict[str, Any]]) -> list[Problem]:
    """KKC143 for each JSON 6902 operation that does not apply to a target, found by
    applying the patches in order to copies of the objects rendered without them, with
    kustomize's rules (github.com/evanphx/json-patch v4): ``replace`` of a missing key of a
    map adds it and ``copy`` from one copies null, so only a missing parent, a missing
    ``remove``/``move`` source or a list index out of range fail; ``test`` fails on a
    missing path (its value is not compared: the rendered objects already carry the
    namespace, labels and images that kustomize sets after the patches). An object that a
    strategic-merge patch changed first is not checked further."""
    work: dict[int, Any] = {}
    done: set[int] = set()
    problems: dict[tuple[str, int], Problem] = {}
    for patch in patches:
        for n, obj in enumerate(objects):
            if n in done or not patch.matches(obj):
                continue
            if not patch.json6902:
                done.add(n)
                continue
            doc = work.setdefault(n, copy.deepcopy(obj))
            for i, op in enumerate(patch.body):
                try:
                    _apply(doc, op)
                except _CannotTell:
                    done.add(n)
                    break
                except _NoApply as exc:
                    done.add(n)
                    line, col = patch.ops_at[i]
                    name = (obj.get("metadata") or {}).get("name")
                    what = f"{op['op']} {op['path']}"
                    if op["op"] in ("move", "copy"):
                        what += f" from {op.get('from')}"
                    problems.setdefault(
                        (patch.display, i),
                        Problem(
                            patch.display,
                            line,
                            col,
                            "KKC143",
                            f"operation {i + 1} ({what}) does not apply to "
                            f"{obj.get('kind')}/{name}: {exc}",
                        ),
                    )
                    break
    return list(problems.values())


def _pointer(tokens: tuple[str, ...]) -> str:
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens) or "/"


def _index(node: list[Any], tokens: tuple[str, ...], *, insert: bool = False) -> int:
    """The list index ``tokens[-1]`` of ``node`` (at ``tokens[:-1]``); ``-`` appends."""
    token, at = tokens[-1], _pointer(tokens[:-1])
    if insert and token == "-":
        return len(node)
    if not re.fullmatch(r"[+-]?[0-9]+", token):
        raise _NoApply(f'{at} is a list and "{token}" is not an index')
    index = int(token)
    if index < 0:
        raise _CannotTell
    if index > len(node) or (index == len(node) and not insert):
        raise _NoApply(f"{at} has {len(node)} items, so no index {index}")
    return index


def _resolve(doc: Any, tokens: tuple[str, ...]) -> Any:
    node = doc
    for i in range(len(tokens)):
        here = tokens[: i + 1]
        if isinstance(node, dict):
            if tokens[i] not in node:
                raise _NoApply(f"{_pointer(here)} does not exist")
            node = node[tokens[i]]
        elif isinstance(node, list):
            node = node[_index(node, here)]
        else:
            raise _NoApply(f"{_pointer(tokens[:i])} is neither a map nor a list")
    return node


def _parent(doc: Any, tokens: tuple[str, ...]) -> Any:
    parent = _resolve(doc, tokens[:-1])
    if not isinstance(parent, dict | list):
        raise _NoApply(f"{_pointer(tokens[:-1])} is neither a map nor a list")
    return parent


def _apply(doc: Any, op: dict[str, Any]) -> None:
    """Apply one operation to ``doc`` in place, as kustomize does, or raise."""
    name, tokens = op["op"], _tokens(str(op["path"]))
    if name in ("move", "copy"):
        source = str(op.get("from", ""))
        if not source.startswith("/"):
            raise _NoApply('it needs a "from" path starting with "/"')
        src = _tokens(source)
        parent = _parent(doc, src)
        if isinstance(parent, list):
            index = _index(parent, src)
            value = parent.pop(index) if name == "move" else parent[index]
        elif src[-1] in parent:
            value = parent.pop(src[-1]) if name == "move" else parent[src[-1]]
        elif name == "copy":
            value = None  # kustomize copies a missing key as null
        else:
            raise _NoApply(f"{_pointer(src)} does not exist")
        _add(doc, tokens, copy.deepcopy(value))
        return
    if name == "add":
        _add(doc, tokens, copy.deepcopy(op.get("value")))
        return
    parent, key = _parent(doc, tokens), tokens[-1]  # remove, replace, test
    if isinstance(parent, list):
        index = _index(parent, tokens)
        if name == "remove":
            del parent[index]
        elif name == "replace":
            parent[index] = copy.deepcopy(op.get("value"))
    elif name == "replace":
        parent[key] = copy.deepcopy(op.get("value"))  # kustomize adds a missing key
    elif key in parent:
        if name == "remove":
            del parent[key]
    elif name == "remove" or op.get("value") is not None:
        raise _NoApply(f"{_pointer(tokens)} does not exist")


def _add(doc: Any, tokens: tuple[str, ...], value: Any) -> None:
    parent = _parent(doc, tokens)
    if isinstance(parent, list):
        parent.insert(_index(parent, tokens, insert=True), value)
    else:
        parent[tokens[-1]] = value


# the workload of each single-replica component (model.SINGLE_REPLICA)
_SINGLE_REPLICA_WORKLOADS = {
    ("mariadb", "server"): ("StatefulSet", "mariadb"),
    ("rabbitmq", "server"): ("StatefulSet", "rabbitmq"),
}


def _sets_replicas(patch: SitePatch, kind: str, name: str) -> tuple[int, int] | None:
    """Where ``patch`` sets the replicas of ``kind``/``name`` (line, col), or None."""
    target = patch.target
    if target.get("kind") != kind:
        return None
    if patch.json6902:
        if not re.fullmatch(target.get("name", ".*"), name):
            return None
        for op, at in zip(
            patch.body, patch.ops_at or [patch.where] * len(patch.body), strict=False
        ):
            if isinstance(op, dict) and op.get("path") == "/spec/replicas":
                return at
        return None
    if target.get("name") == name and "replicas" in ((patch.body or {}).get("spec") or {}):
        return patch.where
    return None


def refused_by_definition(site: Site, objects: list[dict[str, Any]], where: str) -> list[Problem]:
    """What the site definition refuses, done by a site patch instead: the same error
    (KKC126: more than one replica of a component kkc cannot cluster), at the patch that
    sets it, read from the built output (``where`` when no site patch sets it)."""
    out = []
    built = {(o.get("kind"), (o.get("metadata") or {}).get("name")): o for o in objects}
    for (svc, comp), feature in single_replica(site).items():
        kind, name = _SINGLE_REPLICA_WORKLOADS[(svc, comp)]
        obj = built.get((kind, name))
        replicas = ((obj or {}).get("spec") or {}).get("replicas", 1)
        if obj is None or replicas in (0, 1):
            continue
        at = next(
            (
                (p.display, *found)
                for p in site.patches
                if (found := _sets_replicas(p, kind, name)) is not None
            ),
            (where, 1, 1),
        )
        out.append(
            Problem(
                *at,
                "KKC126",
                f"{kind}/{name} gets {replicas} replicas: services.{svc}.{comp}.replicas must "
                f"be 1: {feature} (a site patch cannot do what the site definition refuses)",
            )
        )
    return out
