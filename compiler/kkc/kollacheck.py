"""What each supported release's Kolla accepts: its image names and its config.json rules.

The facts are data, ``kkc/data/kolla/<release>.json``, generated from the real kolla
package of the release by ``tools/gen-kolla-data`` (see the README, "Kolla data"). The
rules below are written once and switched by those facts; ``tests/test_kollacheck.py``
runs every release's real ``set_configs.py`` on the same documents and compares.

``check_config_json`` returns the reasons the release's ``docker/base/set_configs.py``
would stop with an error: ``InvalidConfig`` (exit 1) or an unexpected exception such as
a ``TypeError`` from a value of the wrong type (exit 2). It assumes the container's side
cooperates, which a document alone cannot show: every non-optional ``source`` exists,
owners name users and groups of the image, permission paths exist (a recursed one is a
non-empty directory) and the parent of every ``files[]`` path exists.

``config_json_warnings`` returns what ``set_configs.py`` accepts but ignores or misreads:
keys it does not know (``directories`` on 2025.1, ``files`` before 2026.2), a ``perm``
such as ``"644"`` that 2025.1 and 2026.1 read as a *decimal* number, an empty ``perm``
that leaves the mode unchanged, non-boolean flags, duplicate keys.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from importlib import resources
from typing import Any

_FLAGS = ("optional", "merge", "preserve_properties", "recurse")
_PERMISSION_KEYS = frozenset({"path", "owner", "perm", "recurse", "exclude"})
_GLOB_MAGIC = re.compile(r"[*?[]")
_OCTAL = re.compile(r"(?:0o)?([0-7]{3,4})")


def releases() -> tuple[str, ...]:
    """The releases with Kolla data, oldest first."""
    names = (
        p.name.removesuffix(".json")
        for p in (resources.files("kkc") / "data" / "kolla").iterdir()
        if p.name.endswith(".json")
    )
    return tuple(sorted(names, key=_release_key))


def _release_key(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in release.split("."))


@functools.cache
def _data(release: str) -> dict[str, Any]:
    if release not in releases():
        raise ValueError(f"no Kolla data for release {release!r}; known: {', '.join(releases())}")
    path = resources.files("kkc") / "data" / "kolla" / f"{release}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def kolla_version(release: str) -> str:
    """The kolla package version the release's data was generated from, e.g. ``20.6.0``."""
    return _data(release)["kolla"]


@functools.cache
def images(release: str) -> frozenset[str]:
    """Every image kolla of the release can build, parents (``base``, ``openstack-base``,
    ``nova-base``, ...) included: kolla builds and publishes those too."""
    return frozenset(_data(release)["images"])


@functools.cache
def parents(release: str) -> frozenset[str]:
    """Images other images are built FROM: the ``*-base`` images plus a few service images
    that others extend (``neutron-server``, ``ovn-sb-db-server``, ...)."""
    return frozenset(_data(release)["parents"])


def distros(release: str) -> dict[str, str]:
    """Base distro -> the base image tag kolla builds FROM (ubuntu ``24.04`` = noble)."""
    return dict(_data(release)["distros"])


def unbuildable(release: str, distro: str, arch: str = "x86_64") -> frozenset[str]:
    """The images kolla does not build for ``distro`` (on its default base tag) and
    ``arch``: kolla's UNBUILDABLE_IMAGES entries whose ``+``-joined parts all match."""
    tag = _data(release)["distros"].get(distro)
    wanted = {distro, arch, tag}
    out: set[str] = set()
    for key, names in _data(release)["unbuildable"].items():
        if set(key.split("+")) <= wanted:
            out.update(names)
    return frozenset(out)


def image_problem(
    release: str, image: str, distro: str | None = None, arch: str = "x86_64"
) -> str | None:
    """Why ``image`` is not a Kolla image of the release (message for KKC308), or None."""
    version = kolla_version(release)
    if image not in images(release):
        close = difflib.get_close_matches(image, sorted(images(release)), n=1)
        hint = f'; did you mean "{close[0]}"?' if close else ""
        return f'"{image}" is not an image of Kolla {version} (OpenStack {release}){hint}'
    if distro is not None:
        if distro not in _data(release)["distros"]:
            known = ", ".join(sorted(_data(release)["distros"]))
            return f"Kolla {version} (OpenStack {release}) has no {distro} images; it has {known}"
        if image in unbuildable(release, distro, arch):
            return (
                f'"{image}" is not built for {distro} on {arch} by Kolla {version} '
                f"(OpenStack {release})"
            )
    return None


def check_config_json(release: str, text: str) -> list[str]:
    """The reasons ``set_configs.py`` of ``release`` would reject this config.json, one
    message each (``<where>: <why>``); empty when it would accept it."""
    return _Judge(release).run(text).errors


def config_json_warnings(release: str, text: str) -> list[str]:
    """What ``set_configs.py`` of ``release`` would accept but ignore or misread."""
    return _Judge(release).run(text).warnings


def perm_mode(release: str, perm: str) -> int | None:
    """The mode ``set_configs.py`` of ``release`` gives a file for this ``perm`` string
    (``"644"`` is 0o1204 up to 2026.1, 0o644 on 2026.2), or None where it fails."""
    return _Judge(release).parse_perm(perm)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


class _Judge:
    """One pass over a document, collecting errors and warnings for one release."""

    def __init__(self, release: str) -> None:
        data = _data(release)
        self.release = release
        self.facts = data["set_configs"]
        self.who = f"set_configs.py of {release} (Kolla {data['kolla']})"
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.duplicates: set[str] = set()

    def error(self, where: str, why: str) -> None:
        self.errors.append(f"{where}: {why}")

    def warn(self, where: str, why: str) -> None:
        self.warnings.append(f"{where}: {why}")

    def _pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                self.duplicates.add(key)
            seen[key] = value
        return seen

    def run(self, text: str) -> _Judge:
        try:
            doc = json.loads(text, object_pairs_hook=self._pairs)
        except json.JSONDecodeError as e:
            self.error("document", f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})")
            return self
        for key in sorted(self.duplicates):
            self.warn(key, "key appears more than once in an object; set_configs uses the last")
        if not isinstance(doc, dict):
            self.error("document", f"must be a JSON object, not {_kind(doc)}")
            return self
        if "command" not in doc:
            self.error("command", "missing (required)")
        elif not isinstance(doc["command"], str):
            self.error("command", f"must be a string, not {_kind(doc['command'])}")
        sections = self.facts["sections"]
        for key in doc:
            if key != "command" and key not in sections:
                self.warn(key, f"ignored by {self.who}{self._read_later(key)}")
        for i, entry in self.entries(doc, "config_files"):
            self.config_file(f"config_files[{i}]", entry)
        for section in self.facts["path_sections"]:
            for i, entry in self.entries(doc, section):
                self.path_entry(f"{section}[{i}]", entry)
        for i, entry in self.entries(doc, "permissions"):
            self.permission(f"permissions[{i}]", entry)
        return self

    def _read_later(self, key: str) -> str:
        for other in releases():
            if _release_key(other) > _release_key(self.release):
                if key in _data(other)["set_configs"]["sections"]:
                    return f"; it is read from {other} on"
        return ""

    def entries(self, doc: dict[str, Any], section: str) -> list[tuple[int, dict[str, Any]]]:
        """The objects of a list section. set_configs iterates whatever is there: an empty
        string or object passes unnoticed, anything else that is not a list of objects
        fails on the first entry."""
        if section not in doc:
            return []
        value = doc[section]
        if isinstance(value, str | dict) and not value:
            self.warn(section, f"should be a list; {_kind(value)} that is empty is accepted")
            return []
        if not isinstance(value, list):
            self.error(section, f"must be a list of objects, not {_kind(value)}")
            return []
        out = []
        for i, entry in enumerate(value):
            if isinstance(entry, dict):
                out.append((i, entry))
            else:
                self.error(f"{section}[{i}]", f"must be an object, not {_kind(entry)}")
        return out

    def flags(self, where: str, entry: dict[str, Any]) -> None:
        for flag in _FLAGS:
            if flag in entry and not isinstance(entry[flag], bool):
                value, truth = json.dumps(entry[flag]), str(bool(entry[flag])).lower()
                self.warn(f"{where}.{flag}", f"should be true or false; {value} counts as {truth}")

    def config_file(self, where: str, entry: dict[str, Any]) -> None:
        keys = self.facts["config_file_keys"]
        for key in self.facts["config_file_required"]:
            if key not in entry:
                self.error(where, f'missing required key "{key}"')
            elif not isinstance(entry[key], str):
                self.error(f"{where}.{key}", f"must be a string, not {_kind(entry[key])}")
        for key in sorted(set(entry) - set(keys)):
            self.error(where, f'unknown key "{key}" (allowed: {", ".join(keys)})')
        self.flags(where, entry)
        if entry.get("preserve_properties", False):
            return
        if "owner" not in entry or "perm" not in entry:
            self.error(where, 'needs "owner" and "perm" unless "preserve_properties" is true')
        if "owner" in entry:
            self.owner(f"{where}.owner", entry["owner"])
        if "perm" in entry:
            self.perm(f"{where}.perm", entry["perm"], empty_ok=False)

    def path_entry(self, where: str, entry: dict[str, Any]) -> None:
        required = self.facts["path_required"]
        for key in required:
            if key not in entry:
                self.error(where, f'missing required key "{key}"')
        path = entry.get("path")
        if "path" in entry:
            if not isinstance(path, str):
                self.error(f"{where}.path", f"must be a string, not {_kind(path)}")
            elif self.facts["path_no_glob"] and _GLOB_MAGIC.search(path):
                self.error(f"{where}.path", "must not contain the glob characters * ? [")
        if "owner" in entry:
            self.owner(f"{where}.owner", entry["owner"])
        if "perm" in entry:
            if entry["perm"] is None and self.facts["path_not_null"]:
                self.error(f"{where}.perm", "must not be null")
            else:
                self.perm(f"{where}.perm", entry["perm"], empty_ok=False)
        # the entry goes to handle_permissions as it is: recurse and exclude work here too
        self.flags(where, entry)
        if "exclude" in entry:
            self.exclude(f"{where}.exclude", entry["exclude"], bool(entry.get("recurse")))
        for key in sorted(set(entry) - _PERMISSION_KEYS):
            self.warn(f"{where}.{key}", "ignored (not a key of this section)")

    def permission(self, where: str, entry: dict[str, Any]) -> None:
        for key in ("path", "owner"):
            if entry.get(key) is None:
                self.error(where, f'missing required key "{key}" (or null)')
        path = entry.get("path")
        if path is not None and not isinstance(path, str):
            self.error(f"{where}.path", f"must be a string, not {_kind(path)}")
        if entry.get("owner") is not None:
            self.owner(f"{where}.owner", entry["owner"])
        if entry.get("perm") is not None:
            self.perm(f"{where}.perm", entry["perm"], empty_ok=True)
        self.flags(where, entry)
        if "exclude" in entry:
            self.exclude(f"{where}.exclude", entry["exclude"], bool(entry.get("recurse")))
        for key in sorted(set(entry) - _PERMISSION_KEYS):
            self.warn(f"{where}.{key}", "ignored (not a key of this section)")

    def owner(self, where: str, owner: Any) -> None:
        """``user`` or ``user:group`` (names; ``user:`` means ``user:user``), looked up
        with getpwnam/getgrnam: a missing name, an id or a second colon cannot exist."""
        if not isinstance(owner, str):
            self.error(where, f'must be a string "user" or "user:group", not {_kind(owner)}')
            return
        user, _, group = owner.partition(":")
        if not user:
            self.error(where, f'"{owner}" names no user')
        elif ":" in group:
            self.error(where, f'"{owner}" has more than one ":"')
        elif user.isdigit() or group.isdigit():
            self.error(where, f'"{owner}": set_configs looks up user and group names, not ids')

    def perm(self, where: str, perm: Any, *, empty_ok: bool) -> None:
        if not perm:  # set_configs skips chmod for an empty perm
            if not empty_ok or perm is not None:
                self.warn(where, f"{json.dumps(perm)} leaves the mode unchanged")
            return
        if not isinstance(perm, str):
            self.error(where, f'must be a string such as "0640", not {_kind(perm)}')
            return
        mode = self.parse_perm(perm)
        if mode is None:
            self.error(where, f'"{perm}" is not a mode {self.who} can read; write e.g. "0640"')
            return
        octal = _OCTAL.fullmatch(perm)
        meant = int(octal.group(1), 8) if octal else None
        if meant is None:
            self.warn(where, f'"{perm}" is read as mode {mode:#o}; write e.g. "0640"')
        elif meant != mode:
            self.warn(
                where,
                f'"{perm}" is read as the decimal number {mode} (mode {mode:#o}), '
                f'not as {meant:#o}; write "0{perm}"',
            )
        if mode > 2**31 - 1:  # os.chmod raises OverflowError
            self.error(where, f'"{perm}" is too large for a mode')
        elif not 0 <= mode <= 0o7777:
            self.warn(where, f'"{perm}" is outside 0000-7777; chmod keeps only the low bits')

    def parse_perm(self, perm: str) -> int | None:
        """The mode set_configs computes from ``perm``, None where it raises ValueError."""
        if self.facts["perm_syntax"] == "unix-octal":  # 2026.2: [0-7]{3,4} or 0o[0-7]{3,4}
            octal = _OCTAL.fullmatch(perm)
            return int(octal.group(1), 8) if octal else None
        # up to 2026.1: a 4-character perm gets an "o" after its first character (so
        # "0640" becomes the literal 0o640), then Python's int(perm, 0) reads it.
        if len(perm) == 4 and perm[1] != "o":
            perm = perm[0] + "o" + perm[1:]
        try:
            return int(perm, 0)
        except ValueError:
            return None

    def exclude(self, where: str, exclude: Any, recurse: bool) -> None:
        if not recurse:
            if exclude:
                self.warn(where, 'has no effect without "recurse": true')
            return
        if not exclude:
            return
        if isinstance(exclude, str | dict):
            self.warn(where, "should be a list; set_configs iterates it item by item")
            patterns = list(exclude)
        elif isinstance(exclude, list):
            patterns = exclude
        else:
            self.error(where, f"must be a list of regular expressions, not {_kind(exclude)}")
            return
        for i, pattern in enumerate(patterns):
            if not isinstance(pattern, str):
                self.error(f"{where}[{i}]", f"must be a string, not {_kind(pattern)}")
                continue
            try:
                re.compile(pattern)
            except re.error as e:
                self.error(f"{where}[{i}]", f'"{pattern}" is not a regular expression: {e}')
