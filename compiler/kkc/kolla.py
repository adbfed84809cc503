"""Kolla container contract: config.json documents and INI files, rendered deterministically."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

CONFIG_DIR = "/var/lib/kolla/config_files"
SECRET_DIR = "/var/lib/kolla/secret_files"

Ini = dict[str, dict[str, Any]]  # section -> option -> value (str, int, bool or list for multi)


def ini_value(value: Any) -> str:
    """One value as written in an INI file (booleans as oslo.config writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def ini_entries(ini: Ini) -> list[tuple[str, str, str]]:
    """(section, option, value) of every line :func:`render_ini` writes, in order."""
    return [
        (section, key, ini_value(v))
        for section, options in ini.items()
        for key, value in options.items()
        for v in (value if isinstance(value, list) else [value])
    ]


def render_ini(ini: Ini, header: str) -> str:
    """oslo.config-style INI. Sections and options keep the order given; a list value is
    written as one line per value (multi-valued options)."""
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    section = None
    for sec, key, value in ini_entries(ini):
        if sec != section:
            out += ["", f"[{sec}]"]
            section = sec
        out.append(f"{key} = {value}")
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class IniFile:
    """An OpenStack INI file before rendering: site config overrides
    (:mod:`kkc.overrides`) are merged into ``ini`` per container."""

    ini: Ini
    header: str

    def render(self) -> str:
        return render_ini(self.ini, self.header)


@dataclass
class KollaConfig:
    """One container's /var/lib/kolla/config_files: config.json plus the files it copies.

    Rendered into a ConfigMap ``<name>`` by configMapGenerator (hash-suffixed, so a change
    rolls the pods)."""

    name: str
    command: str
    files: dict[str, str] = field(default_factory=dict)  # file name -> content
    inis: dict[str, IniFile] = field(default_factory=dict)  # the INI files among them
    copies: list[dict[str, Any]] = field(default_factory=list)
    permissions: list[dict[str, Any]] = field(default_factory=list)

    def copy(
        self,
        source: str,
        dest: str,
        owner: str,
        perm: str = "0600",
        *,
        optional: bool = False,
        secret: bool = False,
        source_dir: str = "",
    ) -> None:
        """A config.json entry copying ``source`` of the ConfigMap (``secret``: of the
        Secret; ``source_dir``: of another volume of the pod) to ``dest``."""
        base = source_dir or (SECRET_DIR if secret else CONFIG_DIR)
        entry: dict[str, Any] = {
            "source": f"{base}/{source}",
            "dest": dest,
            "owner": owner,
            "perm": perm,
        }
        if optional:
            entry["optional"] = True
        self.copies.append(entry)

    def add_file(
        self, name: str, content: str | IniFile, dest: str, owner: str, perm: str = "0600"
    ) -> None:
        if isinstance(content, IniFile):
            self.inis[name] = content
            content = content.render()
        self.files[name] = content
        self.copy(name, dest, owner, perm)

    def set_ini(self, name: str, content: IniFile) -> None:
        """Replace the content of the INI file ``name`` added before."""
        self.inis[name] = content
        self.files[name] = content.render()

    def config_json(self) -> str:
        doc: dict[str, Any] = {"command": self.command, "config_files": self.copies}
        if self.permissions:
            doc["permissions"] = self.permissions
        return json.dumps(doc, indent=4, sort_keys=True) + "\n"

    def all_files(self) -> dict[str, str]:
        return {"config.json": self.config_json(), **self.files}
