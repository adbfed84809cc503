"""Kolla container contract: config.json documents and INI files, rendered deterministically."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

CONFIG_DIR = "/var/lib/kolla/config_files"
SECRET_DIR = "/var/lib/kolla/secret_files"

Ini = dict[str, dict[str, Any]]  # section -> option -> value (str, int, bool or list for multi)


def render_ini(ini: Ini, header: str) -> str:
    """oslo.config-style INI. Sections and options keep the order given; a list value is
    written as one line per value (multi-valued options)."""
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    for section, options in ini.items():
        if not options:
            continue
        out += ["", f"[{section}]"]
        for key, value in options.items():
            values = value if isinstance(value, list) else [value]
            for v in values:
                if isinstance(v, bool):
                    v = "true" if v else "false"
                out.append(f"{key} = {v}")
    return "\n".join(out) + "\n"


@dataclass
class KollaConfig:
    """One container's /var/lib/kolla/config_files: config.json plus the files it copies.

    Rendered into a ConfigMap ``<name>`` by configMapGenerator (hash-suffixed, so a change
    rolls the pods)."""

    name: str
    command: str
    files: dict[str, str] = field(default_factory=dict)  # file name -> content
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
    ) -> None:
        base = SECRET_DIR if secret else CONFIG_DIR
        entry: dict[str, Any] = {
            "source": f"{base}/{source}",
            "dest": dest,
            "owner": owner,
            "perm": perm,
        }
        if optional:
            entry["optional"] = True
        self.copies.append(entry)

    def add_file(self, name: str, content: str, dest: str, owner: str, perm: str = "0600") -> None:
        self.files[name] = content
        self.copy(name, dest, owner, perm)

    def config_json(self) -> str:
        doc: dict[str, Any] = {"command": self.command, "config_files": self.copies}
        if self.permissions:
            doc["permissions"] = self.permissions
        return json.dumps(doc, indent=4, sort_keys=True) + "\n"

    def all_files(self) -> dict[str, str]:
        return {"config.json": self.config_json(), **self.files}
