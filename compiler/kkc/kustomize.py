"""The kustomize engine: found once, run the way a GitOps controller runs it."""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import proc
from .errors import EnvironmentProblem, OutputInvalid, Problem

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
    engine = find_engine()
    result = proc.run([*engine.build_argv, str(path)], timeout=300)
    if result.returncode != 0:
        detail = _detail(result.stderr, path, display, tops) or f"exit code {result.returncode}"
        raise OutputInvalid(Problem(display, 1, 1, "KKC300", f"kustomize build failed: {detail}"))
    return result.stdout


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
