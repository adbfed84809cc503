"""`kkc set SITE dotted.path=value ...`: a validated, comment-preserving edit of
sites/SITE/site.yaml.

Each assignment is checked before anything is written: the path must be one the schema
knows (KKC196, with did-you-mean), the value a YAML scalar (for a config option also a
secret reference ``{secret: NAME}``), and a key that looks like a secret is never given a
plain-text value (KKC197; the value is never echoed). The edits are then made on the text
(kkc.siteedit: every other byte kept) and the new text is loaded with the schema and the
semantic checks of every command, and rendered: only when all that passes is the file
replaced. The change is shown as the object-level diff of the rendered output before and
after (kkc.diff), rendered in scratch directories: deploy/ is neither read nor written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from . import diff, pipeline, safety, schema, siteedit
from .errors import InputError, KkcError, Problem, did_you_mean
from .loader import check_site_name, load_site
from .model import NOT_SECRET_PATHS, NOT_SECRET_SUBTREES, SECRETISH_KEY

CMDLINE = "<command line>"


@dataclass(frozen=True)
class Assignment:
    path: tuple[str, ...]
    value: str  # the YAML source text, written as given
    parsed: Any

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


@dataclass
class Edited:
    site: str
    file: str
    assignments: list[Assignment]
    written: bool
    objects: list[diff.ObjectDiff] | None  # None: the current definition did not render
    warnings: list[Problem] = field(default_factory=list)

    def lines(self) -> list[str]:
        verb = "would set" if not self.written else "set"
        out = [f"{self.file}: {verb} {a.dotted} = {a.value}" for a in self.assignments]
        if self.objects is None:
            out.append(f"{self.site}: the current definition does not render; no diff shown")
        elif not self.objects:
            out.append(f"{self.site}: the rendered objects do not change")
        else:
            counts = {c: sum(o.change == c for o in self.objects) for c in diff.ORDER}
            out.append(
                f"{self.site}: {counts['added']} added, {counts['changed']} changed, "
                f"{counts['removed']} removed in the rendered output"
            )
            out += [f"  {o.change:8} {o.label()}" for o in self.objects]
            out += [o.diff.rstrip("\n") for o in self.objects if o.diff]
        if self.written:
            out.append(
                f"next: kkc build {self.site} (writes deploy/{self.site}/), then commit both"
            )
        else:
            out.append("dry run: nothing written")
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "file": self.file,
            "set": [{"path": a.dotted, "value": a.parsed} for a in self.assignments],
            "written": self.written,
            "objects": None if self.objects is None else [o.as_dict() for o in self.objects],
        }


def _bad(code: str, message: str) -> InputError:
    return InputError(Problem(CMDLINE, 1, 1, code, message))


def parse_assignment(word: str, site: str = "SITE") -> Assignment:
    """``dotted.path=value``: the path checked against the schema, the value parsed as YAML."""
    path_text, eq, value = word.partition("=")
    path = tuple(path_text.strip().split("."))
    if not eq or not all(path):
        raise _bad("KKC196", f"{path_text.strip() or word!r}: expected dotted.path=value")
    value = value.strip()
    if "\n" in value:
        raise _bad("KKC196", f"{path_text}: the value must be one line")
    rules = _rules(path)
    if path == ("openstack", "release"):
        raise _bad(
            "KKC199",
            f"openstack.release changes only through kkc upgrade, which checks the path: "
            f"kkc upgrade {site} --to RELEASE (--plan shows the upgrade first)",
        )
    try:
        parsed = YAML(typ="safe").load(value) if value else None
    except YAMLError:
        raise _bad("KKC196", f"{path_text}: the value is not valid YAML") from None
    ref = isinstance(parsed, dict) and list(parsed) == ["secret"] and "anyof" in rules
    if isinstance(parsed, dict | list) and not ref:
        raise _bad(
            "KKC196",
            f"{path_text}: the value must be a scalar (edit lists and mappings in the file)",
        )
    found = Assignment(path, value, parsed)
    _refuse_plain_secret(found, ref, site)
    return found


def _rules(path: tuple[str, ...]) -> dict[str, Any]:
    """The schema rules of the value at ``path``; KKC196 when the schema does not know it."""
    rules: dict[str, Any] = {"type": "dict", "schema": schema.SCHEMA}
    for i, part in enumerate(path):
        here = ".".join(path[: i + 1])
        if rules.get("type") == "dict" and isinstance(rules.get("schema"), dict):
            known = rules["schema"]
            if part not in known:
                hint = did_you_mean(part, known) or f" (known: {', '.join(sorted(known))})"
                raise _bad("KKC196", f"{here}: unknown key{hint}")
            rules = known[part]
        elif "valuesrules" in rules:
            rules = rules["valuesrules"]
        else:
            raise _bad("KKC196", f"{here}: {'.'.join(path[:i])} is a value, not a mapping")
    dotted = ".".join(path)
    if rules.get("type") == "dict":
        keys = sorted(rules.get("schema") or {})
        some = f": set one of its keys ({', '.join(keys)})" if keys else ": set one of its keys"
        raise _bad("KKC196", f"{dotted} is a mapping{some}")
    if rules.get("type") == "list":
        raise _bad("KKC196", f"{dotted} is a list: edit it in the file")
    return rules


def _refuse_plain_secret(a: Assignment, is_ref: bool, site: str) -> None:
    """KKC197: a plain value for a key that looks like a secret (never echoed)."""
    if is_ref or a.parsed is None or a.path[:2] in NOT_SECRET_SUBTREES:
        return
    if a.path[0] == "config":
        if SECRETISH_KEY.search(a.path[-1]):
            raise _bad(
                "KKC197",
                f"{a.dotted} looks like a secret; kkc set never writes one in plain text "
                "(value not shown): put it in the secret store and reference it: "
                f"kkc set {site} '{a.dotted}={{secret: NAME}}' (docs/secrets.md)",
            )
        return
    for i, part in enumerate(a.path):
        if SECRETISH_KEY.search(part) and a.path[: i + 1] not in NOT_SECRET_PATHS:
            raise _bad(
                "KKC197",
                f"{a.dotted} looks like a secret; kkc set never writes one in plain text "
                "(value not shown): secret values live in the secret store, referenced under "
                "secrets.refs (docs/secrets.md)",
            )


def edit_text(text: str, assignments: list[Assignment], display: str) -> str:
    for a in assignments:
        text = siteedit.set_value(text, a.path, a.value, display)
    return text


def set_values(
    root: Path, name: str, words: list[str], *, dry_run: bool, crd_dir: str | None
) -> Edited:
    """Check, apply (unless ``dry_run``) and show the assignments ``words``."""
    path = check_site_name(root, name)
    assignments = [parse_assignment(w, name) for w in words]
    if not assignments:
        raise _bad("KKC196", "nothing to set: give one or more dotted.path=value")
    display = f"sites/{name}/site.yaml"
    old = path.read_text(encoding="utf-8")
    new = edit_text(old, assignments, display)
    after_site = load_site(root, name, site_text=new)  # the schema and the semantic checks
    after = pipeline.render(root, after_site, crd_dir)
    try:
        before = pipeline.render(root, load_site(root, name), crd_dir).manifests
    except KkcError:
        before = None
    objects = None if before is None else diff.compare(before, after.manifests)
    # what the next `kkc build` refuses without --allow-destructive, told now
    unsafe = safety.check_against(root, [(after_site, after.manifests, after.objects)])
    warnings = [*after.warnings, *safety.as_warnings(unsafe.get(name, []))]
    if not dry_run and new != old:
        siteedit.write_atomic(path, new)
    return Edited(name, display, assignments, not dry_run, objects, warnings)
