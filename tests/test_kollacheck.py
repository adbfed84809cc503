"""kkc.kollacheck against the real Kolla of every supported release.

The image lists must hold every image the bases use. The config.json checks are compared
with each release's own ``docker/base/set_configs.py``, taken from the kolla package that
``make venv`` unpacks into ``.venv/kolla/<release>/`` (``tools/gen-kolla-data --unpack``;
``KKC_KOLLA_DIR`` points elsewhere). Those comparisons skip when the packages are absent.

How the real script is run without root and without touching anything outside tmp_path:
it is loaded with importlib (``logging.basicConfig`` muted), and its module globals are
redirected: ``KOLLA_DEFAULTS``/``KOLLA_DEFAULTS_STATE`` into tmp_path, and its ``open``
and ``os`` replaced by thin wrappers that move the four fixed paths it uses
(``/var/lib/kolla/config_files/config.{json,yaml}``, ``/run_command``, ``/configured``)
into tmp_path and pass everything else to the real functions. Every path inside the
test documents is under tmp_path, and owners are the current user and group (chown to
oneself needs no privilege). The test then does what ``main()`` does without ``--check``:
``load_config()`` and ``execute_config_strategy()`` with ``COPY_ALWAYS``; an
``ExitingException`` or any other exception is a rejection, as it is in ``main()``.
"""

from __future__ import annotations

import builtins
import grp
import hashlib
import importlib.util
import json
import logging
import os
import pwd
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import PROJECT
from kkc import kollacheck
from kkc.codes import CODES
from kkc.services import enabled_services
from kkc.site import load_site

RELEASES = kollacheck.releases()
KOLLA_DIR = Path(os.environ.get("KKC_KOLLA_DIR") or PROJECT / ".venv" / "kolla")

# Every image the bases and the OPENSTACK.md component table use.
BASE_IMAGES = """
keystone kolla-toolbox mariadb-server rabbitmq memcached glance-api placement-api
nova-api nova-conductor nova-scheduler nova-novncproxy nova-compute nova-libvirt
neutron-server neutron-metadata-agent ovn-nb-db-server ovn-sb-db-server ovn-northd
ovn-controller openvswitch-db-server openvswitch-vswitchd cinder-api cinder-scheduler
cinder-volume heat-api heat-api-cfn heat-engine horizon
""".split()


def test_supported_releases_have_data() -> None:
    assert RELEASES == ("2025.1", "2026.1", "2026.2")
    assert {r: kollacheck.kolla_version(r).split(".")[0] for r in RELEASES} == {
        "2025.1": "20",
        "2026.1": "22",
        "2026.2": "23",
    }


@pytest.mark.parametrize("release", RELEASES)
def test_images_of_the_bases_exist(release: str) -> None:
    missing = sorted(set(BASE_IMAGES) - kollacheck.images(release))
    assert not missing, f"not built by Kolla {kollacheck.kolla_version(release)}: {missing}"
    assert not set(BASE_IMAGES) & kollacheck.unbuildable(release, "rocky")
    assert not set(BASE_IMAGES) & kollacheck.unbuildable(release, "ubuntu", "aarch64")


def test_image_problem_messages() -> None:
    assert kollacheck.image_problem("2025.1", "keystone") is None
    assert kollacheck.image_problem("2025.1", "keystone", "rocky") is None
    assert kollacheck.image_problem("2026.2", "nova-apii") == (
        '"nova-apii" is not an image of Kolla 23.0.0 (OpenStack 2026.2); did you mean "nova-api"?'
    )
    assert kollacheck.image_problem("2026.2", "keystone", "centos") == (
        "Kolla 23.0.0 (OpenStack 2026.2) has no centos images; it has debian, rocky, ubuntu"
    )
    assert kollacheck.image_problem("2026.1", "collectd", "rocky") == (
        '"collectd" is not built for rocky on x86_64 by Kolla 22.2.0 (OpenStack 2026.1)'
    )
    # rocky+10 entries of 2025.1 do not apply to its default rocky 9
    assert "redis" not in kollacheck.unbuildable("2025.1", "rocky")
    assert "base" in kollacheck.parents("2025.1") and "openstack-base" in kollacheck.images(
        "2025.1"
    )
    with pytest.raises(ValueError, match="no Kolla data for release '2024.1'"):
        kollacheck.images("2024.1")


def test_codes() -> None:
    assert "KKC308" in CODES and "KKC309" in CODES


# --- the real kolla packages ---------------------------------------------------------


def unpacked_docker(release: str) -> Path:
    """The docker/ directory of the release's unpacked kolla; skip when it is absent."""
    marker = KOLLA_DIR / release / "kkc-unpacked.json"
    if not marker.is_file():
        pytest.skip(
            f"kolla for {release} is not unpacked in {KOLLA_DIR}: run `make venv` once "
            "with access to PyPI (or set KKC_KOLLA_DIR)"
        )
    info = json.loads(marker.read_text())
    want = kollacheck.kolla_version(release)
    assert info["kolla"] == want, (
        f"{marker} holds kolla {info['kolla']}, the data is for {want}: run `make venv`"
    )
    return KOLLA_DIR / release / info["docker"]


@pytest.mark.parametrize("release", RELEASES)
def test_data_describes_the_package(release: str) -> None:
    docker = unpacked_docker(release)
    names = sorted({p.parent.name for p in docker.rglob("Dockerfile.j2")})
    assert names == sorted(kollacheck.images(release))
    source = (docker / "base" / "set_configs.py").read_bytes()
    data = json.loads(
        (PROJECT / "compiler" / "kkc" / "data" / "kolla" / f"{release}.json").read_text()
    )
    assert hashlib.sha256(source).hexdigest() == data["set_configs"]["sha256"]


class _RedirectedPath:
    def __init__(self, moved: dict[str, str]) -> None:
        self._moved = moved

    def __getattr__(self, name: str) -> Any:
        return getattr(os.path, name)

    def exists(self, path: Any) -> bool:
        return os.path.exists(self._moved.get(path, path) if isinstance(path, str) else path)


class _RedirectedOs:
    """The real os module, except that kolla's fixed paths are moved into tmp_path."""

    def __init__(self, moved: dict[str, str]) -> None:
        self._moved = moved
        self.path = _RedirectedPath(moved)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def _move(self, path: Any) -> Any:
        return self._moved.get(path, path) if isinstance(path, str) else path

    def chmod(self, path: Any, *args: Any, **kwargs: Any) -> None:
        os.chmod(self._move(path), *args, **kwargs)

    def mknod(self, path: Any, *args: Any, **kwargs: Any) -> None:
        os.mknod(self._move(path), *args, **kwargs)


def load_set_configs(release: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    path = unpacked_docker(release) / "base" / "set_configs.py"
    spec = importlib.util.spec_from_file_location(f"kolla_set_configs_{release}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    with monkeypatch.context() as m:
        m.setattr(logging, "basicConfig", lambda **_: None)
        spec.loader.exec_module(module)
    return module


def run_real(release: str, text: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """None when the real set_configs.py accepts ``text``, else what it raised."""
    module = load_set_configs(release, monkeypatch)
    kolla = tmp / "kolla"
    kolla.mkdir()
    moved = {
        "/var/lib/kolla/config_files/config.json": str(kolla / "config.json"),
        "/var/lib/kolla/config_files/config.yaml": str(kolla / "config.yaml"),
        "/run_command": str(kolla / "run_command"),
        "/configured": str(kolla / "configured"),
    }
    Path(moved["/var/lib/kolla/config_files/config.json"]).write_text(text)

    def redirected_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        return builtins.open(
            moved.get(file, file) if isinstance(file, str) else file, *args, **kwargs
        )

    monkeypatch.setattr(module, "os", _RedirectedOs(moved))
    monkeypatch.setattr(module, "open", redirected_open, raising=False)
    monkeypatch.setattr(module, "KOLLA_DEFAULTS", str(kolla / "defaults"))
    monkeypatch.setattr(module, "KOLLA_DEFAULTS_STATE", str(kolla / "defaults" / "state"))
    monkeypatch.setenv("KOLLA_CONFIG_STRATEGY", "COPY_ALWAYS")
    monkeypatch.chdir(tmp)
    try:
        config = module.load_config()
        module.execute_config_strategy(config)
    except module.ExitingException as e:  # main(): logged, exit code 1
        return f"{type(e).__name__}: {e}"
    except Exception as e:  # main(): "Unexpected error", exit code 2
        return f"unexpected {type(e).__name__}: {e}"
    assert Path(moved["/run_command"]).read_text() == json.loads(text)["command"]
    return None


@dataclass
class Ctx:
    """The scratch filesystem a document refers to."""

    tmp: Path
    owner: str  # "user:group" of the current process

    @property
    def src(self) -> str:
        return str(self.tmp / "src")

    @property
    def dst(self) -> str:
        return str(self.tmp / "dst")

    def copy(self, **changes: Any) -> dict[str, Any]:
        entry = {
            "source": f"{self.src}/a.conf",
            "dest": f"{self.dst}/etc/a.conf",
            "owner": self.owner,
            "perm": "0600",
        }
        entry.update(changes)
        return {k: v for k, v in entry.items() if v is not DROP}

    def path(self, section: str, **changes: Any) -> dict[str, Any]:
        path = f"{self.dst}/made" if section == "directories" else f"{self.src}/dir/new.txt"
        entry = {"path": path, "owner": self.owner, "perm": "0750"}
        entry.update(changes)
        return {k: v for k, v in entry.items() if v is not DROP}

    def perms(self, **changes: Any) -> dict[str, Any]:
        entry = {"path": f"{self.src}/dir", "owner": self.owner}
        entry.update(changes)
        return {k: v for k, v in entry.items() if v is not DROP}


def make_ctx(tmp: Path) -> Ctx:
    for rel in ("src/a.conf", "src/b.conf", "src/dir/x.conf", "src/dir/.keep"):
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_text(f"{rel}\n")
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    return Ctx(tmp=tmp, owner=f"{user}:{group}")


DROP = object()
ALL = frozenset(RELEASES)
NONE: frozenset[str] = frozenset()
FROM_2026_1 = frozenset({"2026.1", "2026.2"})
ONLY_2026_2 = frozenset({"2026.2"})
UP_TO_2026_1 = frozenset({"2025.1", "2026.1"})


def cmd(*, command: Any = "true", **rest: Any) -> dict[str, Any]:
    return {"command": command, **rest}


# name -> (document from the scratch filesystem, the releases whose set_configs rejects it)
CASES: dict[str, tuple[Callable[[Ctx], Any], frozenset[str]]] = {
    "minimal": (lambda c: cmd(), NONE),
    "typical": (
        lambda c: cmd(
            command="keystone-startup.sh --debug",
            config_files=[
                c.copy(),
                c.copy(source=f"{c.src}/b.conf", dest=f"{c.dst}/etc/conf.d/", perm="0o640"),
                c.copy(source=f"{c.src}/dir", dest=f"{c.dst}/dir", merge=True),
                c.copy(source=f"{c.src}/missing.conf", optional=True),
                c.copy(source=f"{c.src}/*.conf", dest=f"{c.dst}/glob/"),
            ],
            permissions=[
                c.perms(perm="0750", recurse=True, exclude=[r"\.keep$"]),
                c.perms(path=f"{c.dst}/nothing-here*"),
            ],
        ),
        NONE,
    ),
    "missing command": (lambda c: {"config_files": [c.copy()]}, ALL),
    "command is a list": (lambda c: cmd(command=["true"]), ALL),
    "missing dest": (lambda c: cmd(config_files=[c.copy(dest=DROP)]), ALL),
    "missing source": (lambda c: cmd(config_files=[c.copy(source=DROP)]), ALL),
    "source is a number": (lambda c: cmd(config_files=[c.copy(source=5)]), ALL),
    "dest is null": (lambda c: cmd(config_files=[c.copy(dest=None)]), ALL),
    "owner missing": (lambda c: cmd(config_files=[c.copy(owner=DROP)]), ALL),
    "perm missing": (lambda c: cmd(config_files=[c.copy(perm=DROP)]), ALL),
    "preserve_properties instead of owner and perm": (
        lambda c: cmd(config_files=[c.copy(owner=DROP, perm=DROP, preserve_properties=True)]),
        NONE,
    ),
    "preserve_properties false, owner missing": (
        lambda c: cmd(config_files=[c.copy(owner=DROP, preserve_properties=False)]),
        ALL,
    ),
    "unknown key in config_files": (lambda c: cmd(config_files=[c.copy(mode="0600")]), ALL),
    "perm symbolic": (lambda c: cmd(config_files=[c.copy(perm="rw-r-----")]), ALL),
    "perm 1777": (lambda c: cmd(config_files=[c.copy(perm="1777")]), UP_TO_2026_1),
    "perm 644": (lambda c: cmd(config_files=[c.copy(perm="644")]), NONE),
    "perm 0o640": (lambda c: cmd(config_files=[c.copy(perm="0o640")]), NONE),
    "perm 00640": (lambda c: cmd(config_files=[c.copy(perm="00640")]), ALL),
    "perm hex": (lambda c: cmd(config_files=[c.copy(perm="0x1a0")]), ONLY_2026_2),
    "perm number": (lambda c: cmd(config_files=[c.copy(perm=384)]), ALL),
    "perm empty": (lambda c: cmd(config_files=[c.copy(perm="")]), NONE),
    "owner null": (lambda c: cmd(config_files=[c.copy(owner=None)]), ALL),
    "owner without user": (
        lambda c: cmd(config_files=[c.copy(owner=":" + c.owner.split(":")[1])]),
        ALL,
    ),
    "owner numeric": (lambda c: cmd(config_files=[c.copy(owner=f"{os.getuid()}")]), ALL),
    "flag as a string": (lambda c: cmd(config_files=[c.copy(optional="no")]), NONE),
    "config_files null": (lambda c: cmd(config_files=None), ALL),
    "config_files empty object": (lambda c: cmd(config_files={}), NONE),
    "config_files of strings": (lambda c: cmd(config_files=["a.conf"]), ALL),
    "permissions missing owner": (lambda c: cmd(permissions=[c.perms(owner=DROP)]), ALL),
    "permissions missing path": (lambda c: cmd(permissions=[c.perms(path=DROP)]), ALL),
    "permissions bad perm": (lambda c: cmd(permissions=[c.perms(perm="0999")]), ALL),
    "permissions bad exclude, recursing": (
        lambda c: cmd(permissions=[c.perms(recurse=True, exclude=["("])]),
        ALL,
    ),
    "permissions bad exclude, not recursing": (
        lambda c: cmd(permissions=[c.perms(exclude=["("])]),
        NONE,
    ),
    "directories": (lambda c: cmd(directories=[c.path("directories")]), NONE),
    "directories missing perm": (
        lambda c: cmd(directories=[c.path("directories", perm=DROP)]),
        FROM_2026_1,
    ),
    "directories perm null": (
        lambda c: cmd(directories=[c.path("directories", perm=None)]),
        ONLY_2026_2,
    ),
    "directories owner null": (
        lambda c: cmd(directories=[c.path("directories", owner=None)]),
        FROM_2026_1,
    ),
    "directories bad perm": (
        lambda c: cmd(directories=[c.path("directories", perm="rwx")]),
        FROM_2026_1,
    ),
    "directories glob path": (
        lambda c: cmd(directories=[c.path("directories", path=f"{c.dst}/made*")]),
        ONLY_2026_2,
    ),
    "directories bad exclude, recursing": (
        lambda c: cmd(
            directories=[c.path("directories", path=f"{c.src}/dir", recurse=True, exclude=["("])]
        ),
        FROM_2026_1,
    ),
    "directories not a list": (lambda c: cmd(directories="x"), FROM_2026_1),
    "files": (lambda c: cmd(files=[c.path("files")]), NONE),
    "files missing owner": (lambda c: cmd(files=[c.path("files", owner=DROP)]), ONLY_2026_2),
    "unknown top-level key": (lambda c: cmd(comand="true"), NONE),
    "not an object": (lambda c: ["command"], ALL),
    "invalid JSON": (lambda c: '{"command": "true",}', ALL),
    "duplicate key": (lambda c: '{"command": "false", "command": "true"}', NONE),
}


def text_of(doc: Any) -> str:
    return doc if isinstance(doc, str) else json.dumps(doc, indent=2)


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("case", CASES)
def test_judged_like_set_configs(
    release: str, case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build, rejected_by = CASES[case]
    text = text_of(build(make_ctx(tmp_path)))
    real = run_real(release, text, tmp_path, monkeypatch)
    ours = kollacheck.check_config_json(release, text)
    assert (real is not None) == bool(ours), f"set_configs: {real!r}; kkc: {ours!r}"
    assert (real is not None) == (release in rejected_by), f"set_configs: {real!r}"


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("perm", ["0600", "0640", "644", "0o640", "0o1777", "1777", "0x1a0", "600"])
def test_perm_reading_like_set_configs(
    release: str, perm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(tmp_path)
    real = run_real(
        release, text_of(cmd(config_files=[ctx.copy(perm=perm)])), tmp_path, monkeypatch
    )
    mode = kollacheck.perm_mode(release, perm)
    assert (real is None) == (mode is not None), real
    if mode is not None:
        assert os.stat(f"{ctx.dst}/etc/a.conf").st_mode & 0o777 == mode & 0o777


# --- messages ------------------------------------------------------------------------


def check(release: str, doc: Any) -> list[str]:
    return kollacheck.check_config_json(release, text_of(doc))


def warnings(release: str, doc: Any) -> list[str]:
    return kollacheck.config_json_warnings(release, text_of(doc))


SRC = "/var/lib/kolla/config_files"


def test_messages() -> None:
    assert check("2025.1", {}) == ["command: missing (required)"]
    assert check("2025.1", "{") == [
        "document: not valid JSON: Expecting property name enclosed in double quotes "
        "(line 1, column 2)"
    ]
    assert check("2025.1", []) == ["document: must be a JSON object, not a list"]
    entry = {"source": f"{SRC}/k.conf", "mode": "0600"}
    assert check("2026.1", cmd(config_files=[entry])) == [
        'config_files[0]: missing required key "dest"',
        'config_files[0]: unknown key "mode" (allowed: dest, merge, optional, owner, perm, '
        "preserve_properties, source)",
        'config_files[0]: needs "owner" and "perm" unless "preserve_properties" is true',
    ]
    entry = {"source": f"{SRC}/k.conf", "dest": "/etc/k.conf", "owner": "keystone"}
    assert check("2025.1", cmd(config_files=[{**entry, "perm": "1777"}])) == [
        'config_files[0].perm: "1777" is not a mode set_configs.py of 2025.1 (Kolla 20.6.0) '
        'can read; write e.g. "0640"'
    ]
    assert check("2026.2", cmd(config_files=[{**entry, "perm": "1777"}])) == []
    assert check(
        "2026.2", cmd(directories=[{"path": "/var/lib/k*", "owner": "k", "perm": None}])
    ) == [
        "directories[0].path: must not contain the glob characters * ? [",
        "directories[0].perm: must not be null",
    ]
    assert check("2026.1", cmd(directories=[{"path": "/var/lib/k"}])) == [
        'directories[0]: missing required key "owner"',
        'directories[0]: missing required key "perm"',
    ]
    assert check("2025.1", cmd(permissions=[{"path": "/x", "owner": "a:b:c"}])) == [
        'permissions[0].owner: "a:b:c" has more than one ":"'
    ]
    assert check("2025.1", cmd(permissions=[{"perm": 600, "owner": "42425"}])) == [
        'permissions[0]: missing required key "path" (or null)',
        'permissions[0].owner: "42425": set_configs looks up user and group names, not ids',
        'permissions[0].perm: must be a string such as "0640", not a number',
    ]


def test_warnings() -> None:
    dirs = cmd(directories=[{"path": "/var/lib/k", "owner": "k", "perm": "0750"}], files=[])
    assert check("2025.1", dirs) == []
    assert warnings("2025.1", dirs) == [
        "directories: ignored by set_configs.py of 2025.1 (Kolla 20.6.0); it is read from "
        "2026.1 on",
        "files: ignored by set_configs.py of 2025.1 (Kolla 20.6.0); it is read from 2026.2 on",
    ]
    assert warnings("2026.2", dirs) == []
    entry = {"source": f"{SRC}/k.conf", "dest": "/etc/k.conf", "owner": "k", "perm": "644"}
    assert warnings("2026.1", cmd(config_files=[entry])) == [
        'config_files[0].perm: "644" is read as the decimal number 644 (mode 0o1204), not as '
        '0o644; write "0644"'
    ]
    assert warnings("2026.2", cmd(config_files=[entry])) == []
    assert warnings("2025.1", cmd(config_files=[{**entry, "perm": "", "optional": "no"}])) == [
        'config_files[0].optional: should be true or false; "no" counts as true',
        'config_files[0].perm: "" leaves the mode unchanged',
    ]
    assert warnings(
        "2025.1", cmd(permissions=[{"path": "/x", "owner": "k", "exclude": ["a"]}])
    ) == ['permissions[0].exclude: has no effect without "recurse": true']
    assert warnings("2025.1", '{"command": "a", "command": "b"}') == [
        "command: key appears more than once in an object; set_configs uses the last"
    ]
    assert kollacheck.perm_mode("2025.1", "644") == 644
    assert kollacheck.perm_mode("2026.2", "644") == 0o644
    assert kollacheck.perm_mode("2026.2", "0x1a0") is None


# --- the one-shot modes of the database Jobs -------------------------------------------

# (stage, image, mode) of every database Job step of site-a that runs an image's mode; the
# other steps run their command themselves (KOLLA_SKIP_EXTEND_START).
MODES = {
    ("db", "keystone", "KOLLA_UPGRADE"),
    ("finish", "keystone", "KOLLA_FINISH_UPGRADE"),
    ("db", "placement-api", "KOLLA_UPGRADE"),
    ("finish", "placement-api", "KOLLA_OSM"),
    ("db", "cinder-api", "KOLLA_BOOTSTRAP"),
    ("finish", "cinder-api", "KOLLA_OSM"),
}
# What must wait until every pod runs the new release (stage finish, never stage db).
AFTER_THE_ROLL = ("--contract", "online_data_migrations")


def mode_commands(script: str, mode: str) -> list[str]:
    """The commands of the block ``if [[ "${!MODE[@]}" ]]; then ... fi`` of an image's
    extend_start.sh, without ``sudo -H -u <user>`` and keystone's extra-arguments variable."""
    lines = [line.strip() for line in script.splitlines()]
    start = lines.index(f'if [[ "${{!{mode}[@]}}" ]]; then')
    end = script.splitlines().index("fi", start)  # the block's own fi, not an indented one
    out = []
    for line in lines[start + 1 : end]:
        if line and not line.startswith(("#", "echo ")):
            line = re.sub(r"^sudo -H -u \w+ ", "", line)
            out.append(line.replace("${EXTRA_KEYSTONE_MANAGE_ARGS} ", ""))
    return out


@pytest.mark.parametrize("release", RELEASES)
def test_database_jobs_run_the_modes_they_name(release: str) -> None:
    """Each step that sets a one-shot mode runs, in the image of every release, what its
    config.json command names, then exits; contract and online migrations only in finish."""
    docker = unpacked_docker(release)
    steps = [
        (stage, step)
        for out in enabled_services(load_site(PROJECT, "site-a"))
        for stage in ("db", "finish")
        for job in out.db_jobs(stage)
        for step in job.steps
    ]
    seen = set()
    for stage, step in steps:
        env = dict(step.env)
        modes = [k for k in env if k.startswith("KOLLA_") and k != "KOLLA_SKIP_EXTEND_START"]
        if not modes:
            assert "KOLLA_SKIP_EXTEND_START" in env, step.name
            continue
        assert "KOLLA_SKIP_EXTEND_START" not in env, f"{step.config.name}: the mode is skipped"
        [mode] = modes
        seen.add((stage, step.image, mode))
        [script] = docker.glob(f"*/{step.image}/extend_start.sh")
        commands = mode_commands(script.read_text(), mode)
        assert commands[0] == step.config.command, (step.config.name, commands)
        assert commands[-1] == "exit 0", (step.config.name, commands)
        late = [c for c in commands if any(word in c for word in AFTER_THE_ROLL)]
        if stage == "db":
            assert late == [], step.config.name
        else:
            assert late == commands[:-1], step.config.name
    assert seen == MODES


def test_mode_commands_reads_the_block_of_the_mode() -> None:
    script = """\
#!/bin/bash
if [[ "${!KOLLA_UPGRADE[@]}" ]]; then
    # expand first
    sudo -H -u keystone keystone-manage ${EXTRA_KEYSTONE_MANAGE_ARGS} db_sync --expand
    if [[ "${!X[@]}" ]]; then
        echo "x"
    fi
    exit 0
fi
if [[ "${!KOLLA_OSM[@]}" ]]; then
    placement-manage db online_data_migrations
fi
"""
    assert mode_commands(script, "KOLLA_UPGRADE") == [
        "keystone-manage db_sync --expand",
        'if [[ "${!X[@]}" ]]; then',
        "fi",
        "exit 0",
    ]
    assert mode_commands(script, "KOLLA_OSM") == ["placement-manage db online_data_migrations"]
    with pytest.raises(ValueError):
        mode_commands(script, "KOLLA_BOOTSTRAP")
