"""The kustomize engine: found once, run the way a GitOps controller runs it."""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import cache, proc
from .errors import EnvironmentProblem, OutputInvalid, Problem
from .yamlio import load_stream

INSTALL_HINT = (
    "install kustomize v5 (https://kubectl.docs.kubernetes.io/installation/kustomize/) or "
    "kubectl (it embeds kustomize v5), or set KKC_KUSTOMIZE to the path of a kustomize binary"
)


@dataclass(frozen=True)
class Engine:
    build_argv: tuple[str, ...]  # prefix that builds a directory given as the last argument
    version: str
    source: str  # "KKC_KUSTOMIZE", "kustomize on PATH", "kubectl kustomize"

    def describe(self) -> str:
        return f"{shlex.join(self.build_argv)} — kustomize v{self.version} ({self.source})"


def _probe(build_argv: list[str], version_argv: list[str], pattern: str) -> str:
    result = proc.run(version_argv, timeout=30)
    m = re.search(pattern, result.stdout + result.stderr)
    if result.returncode != 0 or not m:
        raise EnvironmentProblem(f"`{shlex.join(version_argv)}` did not report a version")
    version = m.group(1)
    if int(version.split(".")[0]) < 5:
        raise EnvironmentProblem(f"`{shlex.join(build_argv)}` is kustomize {version}; v5+ needed")
    return version


@functools.cache
def find_engine() -> Engine:
    """KKC_KUSTOMIZE, else `kustomize` (v5+) on PATH, else `kubectl kustomize`."""
    plain = r"v?([0-9]+\.[0-9]+\.[0-9]+)"
    candidates: list[tuple[list[str], list[str], str, str]] = []
    override = os.environ.get("KKC_KUSTOMIZE")
    if override:
        binary = shlex.split(override)
        candidates.append(([*binary, "build"], [*binary, "version"], plain, "KKC_KUSTOMIZE"))
    else:
        if shutil.which("kustomize"):
            candidates.append(
                (["kustomize", "build"], ["kustomize", "version"], plain, "kustomize on PATH")
            )
        if shutil.which("kubectl"):
            candidates.append(
                (
                    ["kubectl", "kustomize"],
                    ["kubectl", "version", "--client"],
                    r"Kustomize Version:\s*v?([0-9]+\.[0-9]+\.[0-9]+)",
                    "kubectl kustomize",
                )
            )
    problems = []
    for build_argv, version_argv, pattern, source in candidates:
        try:
            version = _probe(build_argv, version_argv, pattern)
        except EnvironmentProblem as exc:
            problems.append(str(exc))
            continue
        return Engine(tuple(build_argv), version, source)
    found = "; ".join(problems) if problems else "neither kustomize nor kubectl is on PATH"
    raise EnvironmentProblem(f"no usable kustomize engine ({found}); {INSTALL_HINT}")


def build(path: Path, display: str, tops: tuple[Path, ...] = ()) -> str:
    """`kustomize build path` with the controller's defaults (root-only load restrictor, no
    plugins, no helm, no exec functions); returns the YAML stream it prints. ``tops``: more
    directories whose paths an error names relative to them (the repository that a
    scratch directory links to)."""
    return build_reading(path, display, tops)[0]


def build_reading(
    path: Path, display: str, tops: tuple[Path, ...] = ()
) -> tuple[str, dict[str, bytes] | None]:
    """:func:`build`, and the files the build can read (:func:`inputs`, which key its cache
    entry); None when the cache is off or they cannot be known."""
    engine = find_engine()
    files = inputs(path) if cache.enabled() else None
    key = None if files is None else _key(files, engine)
    if key is not None:
        hit = cache.get("kustomize", key)
        if hit is not None:
            return hit.decode("utf-8"), files
    _RUNS[0] += 1
    result = proc.run([*engine.build_argv, str(path)], timeout=300)
    if result.returncode != 0:
        detail = _detail(result.stderr, path, display, tops) or f"exit code {result.returncode}"
        raise OutputInvalid(Problem(display, 1, 1, "KKC300", f"kustomize build failed: {detail}"))
    if key is not None:
        cache.put("kustomize", key, result.stdout.encode("utf-8"))
    return result.stdout, files


_RUNS = [0]  # kustomize builds this process has run (not read from the cache)


def runs() -> int:
    """How many kustomize builds this process has run, cache hits not counted."""
    return _RUNS[0]


KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@|github\.com/|gitlab\.com/)")


def _kustomization(directory: str) -> str | None:
    for name in KUSTOMIZATION_FILES:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def _strings(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def inputs_key(path: Path, engine: Engine) -> str | None:
    """The cache key of `kustomize build path`: the engine, and the path and content of
    every file the build can read (:func:`inputs`); None when they cannot be known."""
    files = inputs(path)
    return None if files is None else _key(files, engine)


def _key(files: dict[str, bytes], engine: Engine) -> str:
    parts: list[bytes | str] = [engine.describe()]
    for name in sorted(files):
        parts += [name, files[name]]
    return cache.digest(*parts)


def inputs(path: Path) -> dict[str, bytes] | None:
    """Every file `kustomize build path` can read, by its path relative to ``path`` (those
    outside it start with ``..``), with its bytes; None when it cannot be known (a remote
    resource, an unreadable file). With the root-only load restrictor that a controller
    uses, kustomize reads a kustomization file and only what its fields name: resources and
    components (a directory: its kustomization, followed in turn, or a file), patches,
    generator and replacement files. Every string of the kustomization that names an
    existing file or kustomization directory is taken, so this covers at least what
    kustomize reads; a file it does not read only costs a cache miss."""
    files: dict[str, bytes] = {}
    todo, seen = ["."], set()
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        seen.add(rel)
        kust = _kustomization(os.path.join(path, rel))
        if kust is None:
            return None
        try:
            text = Path(kust).read_bytes()
            docs = load_stream(text.decode("utf-8"))
        except Exception:  # noqa: BLE001 - unreadable or bad YAML: kustomize reports it
            return None
        files[os.path.normpath(os.path.join(rel, os.path.basename(kust)))] = text
        for value in _strings(docs):
            if "\n" in value or len(value) > 1024:
                continue  # an inline patch: part of the kustomization's own text
            if _REMOTE.match(value):
                return None
            for ref in {value, value.split("=", 1)[-1]}:
                target = os.path.normpath(os.path.join(rel, ref))
                full = os.path.join(path, target)
                if os.path.isfile(full):
                    try:
                        files[target] = Path(full).read_bytes()
                    except OSError:
                        return None
                elif os.path.isdir(full) and _kustomization(full):
                    todo.append(target)
    return files


# klog's line header (`E1201 17:07:12.123456    2663 run.go:72] `), which kubectl puts
# before its error, and the structured message it wraps kustomize's error in
_KLOG = re.compile(r"^[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ [^\]\s]+\] ")
_KLOG_FAILED = re.compile(r'^"command failed" err="(?P<err>.*)"$')
_KLOG_BLOCK = re.compile(r'^"command failed" err=< (?P<err>.*) >$')
_STAGED = re.compile(r"\.kkc-tmp-(?P<site>[a-z0-9-]+)\.[A-Za-z0-9_]+")


def _detail(stderr: str, path: Path, display: str, tops: tuple[Path, ...] = ()) -> str:
    """kustomize's error as one line: without klog's prefix, the directory that was built
    (a staging or scratch directory) named as ``display``'s directory, other paths relative
    to the top of the tree it lies in (<top>/deploy/<dir>)."""
    lines = []
    for line in stderr.splitlines():
        line = _KLOG.sub("", line.strip())
        m = _KLOG_FAILED.match(line)
        lines.append(m.group("err").replace('\\"', '"') if m else line)
    text = " ".join(" ".join(lines).split())
    text = _KLOG_BLOCK.sub(r"\g<err>", text)  # a multi-line error: err=<\n...\n >
    for built in dict.fromkeys([path, path.resolve()]):
        text = text.replace(str(built), str(PurePosixPath(display).parent))
        text = text.replace(f"{built.parent.parent}/", "")
    for top in tops:
        text = text.replace(f"{top}/", "")
    return _STAGED.sub(r"\g<site>", text)
