"""The kustomize engine: found once, run the way a GitOps controller runs it."""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

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


def build(path: Path, display: str) -> str:
    """`kustomize build path` with the controller's defaults (root-only load restrictor, no
    plugins, no helm, no exec functions); returns the YAML stream it prints."""
    engine = find_engine()
    result = proc.run([*engine.build_argv, str(path)], timeout=300)
    if result.returncode != 0:
        detail = " ".join(result.stderr.strip().split()) or f"exit code {result.returncode}"
        raise OutputInvalid(Problem(display, 1, 1, "KKC300", f"kustomize build failed: {detail}"))
    return result.stdout
