"""Every rendered INI file of a site through the real service's option definitions:
the options that the release's packages register (the namespaces of each project's own
oslo-config-generator file, read from its sdist, as tools/gen-option-catalog does), and
in a section that registers ``auth_type`` the options of that keystoneauth plugin. An
option the service does not register there is an error: oslo.config would ignore it, so
the setting never takes effect. This covers the files of workloads that cannot run here
(nova-compute, the OVN metadata agent) too."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

# Run in the release's venv: {"file": [namespaces]} on stdin, the unknown options out.
SNIPPET = r"""
import configparser, json, sys
from keystoneauth1 import loading
from oslo_config import generator
req = json.load(sys.stdin)
out = {}
for path, namespaces in req.items():
    groups = {}
    for ns, listing in generator._list_opts(namespaces):
        for group, opts in listing:
            name = getattr(group, "name", group) or "DEFAULT"
            for o in opts:
                names = groups.setdefault(name, set())
                names.add(o.dest)
                names.add(o.name.replace("-", "_"))
                for d in o.deprecated_opts:
                    if (d.group or name) == name and d.name:
                        names.add(d.name.replace("-", "_"))
    parser = configparser.RawConfigParser(strict=False, interpolation=None,
                                          default_section="kkc-no-default")
    parser.optionxform = str
    parser.read(path)
    if not parser.has_section("DEFAULT"):
        parser.add_section("DEFAULT")
    unknown = []
    for section in parser.sections():
        known = groups.get(section)
        backends = [b.split(":")[0].strip() for b in parser.get(
            "DEFAULT", "enabled_backends", fallback="").split(",") if b.strip()] if (
            parser.has_section("DEFAULT")) else []
        if known is None and (section in backends or section in (
                "os_glance_tasks_store", "os_glance_staging_store")):
            # groups the services register at run time: cinder's volume backends (the
            # driver options, as in [backend_defaults]) and glance's stores (glance_store)
            if "backend_defaults" in groups:  # cinder: the driver options and volume_backend_opts
                # cinder-volume registers backend_host in each backend section
                # (cinder/cmd/volume.py host_opt)
                known = groups["backend_defaults"] | groups.get("DEFAULT", set()) | {
                    "backend_host"}
            else:
                known = groups.get("glance_store")
        if known is None and section.startswith("privsep"):
            # an oslo.privsep context registers its options under its own section
            from oslo_privsep import priv_context
            known = {o.dest for o in priv_context.OPTS}
        if known is None:
            if "." in section and section.split(".")[0] in groups:
                continue  # dynamic sub-sections ([ec2authtoken.<cloud>], backends)
            unknown.append(f"[{section}]: section not registered")
            continue
        auth_type = parser.get(section, "auth_type", fallback=None)
        plugin = set()
        if auth_type and "auth_type" in known:
            plugin = {o.dest for o in loading.get_auth_plugin_conf_options(auth_type)}
        for option in parser.options(section):
            key = option.replace("-", "_")
            if key not in known and key not in plugin:
                unknown.append(f"[{section}] {option}")
    out[path] = unknown
json.dump(out, sys.stdout)
"""


def namespaces(venv: Path) -> dict[str, list[str]]:
    """conf file name -> the namespaces its service registers (from the sdists)."""
    from .venvs import catalog_tool

    tool = catalog_tool()
    release = next(r for r, pins in tool.PINS.items() if venv.name == f"e2e-{r}")
    out = {}
    for conf_file, (package, gen_path) in tool.CONF_FILES.items():
        sdist = tool.find_sdist(venv / "work" / "sdist", package, tool.PINS[release][package])
        found = tool.namespaces_of(tool.sdist_member(sdist, gen_path))
        out[conf_file] = found + [
            n for n in tool.EXTRA_NAMESPACES.get(conf_file, ()) if n not in found
        ]
    return out


def ini_files(site, secrets: dict[str, dict[str, str]]) -> list[tuple[str, str, str]]:
    """(label, conf file kind, text) of every rendered INI file, each read together with
    the Secret drop-in that its container's config.json adds (oslo.config merges them)."""
    out = []
    for cm in site.of_kind("ConfigMap"):
        data = cm.get("data") or {}
        dropins = []
        if "config.json" in data:
            for item in json.loads(data["config.json"]).get("config_files", []):
                if item["source"].startswith("/var/lib/kolla/secret_files/"):
                    dropins.append(item["source"].rsplit("/", 1)[-1])
        service = cm["metadata"]["name"].split("-")[0]
        for key, text in sorted(data.items()):
            if not key.endswith((".conf", ".ini")):
                continue
            label = f"ConfigMap {cm['metadata']['name']} {key}"
            for dropin in dropins:
                secret = secrets.get(f"{service}-secrets", {})
                if dropin in secret and dropin.split(".")[0] == key.split(".")[0].split("-")[0]:
                    text = text + "\n" + secret[dropin]
                    label += f" + Secret {service}-secrets {dropin}"
            out.append((label, key, text))
    return out


def check(site, venv: Path, secrets: dict[str, dict[str, str]]) -> list[tuple[str, list[str]]]:
    spaces = namespaces(venv)
    files = []
    with tempfile.TemporaryDirectory(prefix="kkc-optcheck-") as tmp:
        # one process per service (projects register clashing global options)
        requests: dict[str, dict[str, list[str]]] = {}
        for i, (label, key, text) in enumerate(ini_files(site, secrets)):
            kind = key if key in spaces else key.replace(".conf", "-api.conf")
            if kind not in spaces:
                continue
            path = Path(tmp) / f"{i:03d}-{key}"
            path.write_text(text)
            requests.setdefault(kind, {})[str(path)] = spaces[kind]
            files.append((label, str(path)))
        found: dict[str, list[str]] = {}
        for kind, request in sorted(requests.items()):
            done = subprocess.run(
                [str(venv / "bin" / "python"), "-c", SNIPPET],
                input=json.dumps(request),
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0:
                raise RuntimeError(f"option check of {kind} failed: {done.stderr[-1500:]}")
            found.update(json.loads(done.stdout))
    return [(label, found[path]) for label, path in files]
