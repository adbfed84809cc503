#!/usr/bin/env python3
"""make bench: time `kkc build site-a` against the bare `kustomize build` of its output.

Both run on the same machine, in a scratch copy of this repository, several times; the
medians and their ratios are printed. Each kkc run starts from an empty deploy/. The cold
series bypasses kkc's caches (KKC_NO_CACHE=1: render, kustomize build, validation, write);
the warm series runs with the caches filled by one run first (what an unchanged site costs
in CI or at the terminal: loading it, comparing, writing)."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 7
PROJECT = Path(__file__).resolve().parent.parent


def timed(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(
        args, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def main() -> int:
    from kkc.kustomize import find_engine

    engine = find_engine()
    with tempfile.TemporaryDirectory(prefix="kkc-bench-") as tmp:
        work = Path(tmp)
        for part in ("sites", "base", "overlays"):
            if (PROJECT / part).is_dir():
                shutil.copytree(PROJECT / part, work / part)
        kkc = [shutil.which("kkc") or "kkc", "build", "site-a"]
        cold = {**os.environ, "KKC_NO_CACHE": "1"}
        warm = {**os.environ, "KKC_CACHE_DIR": str(work / ".cache")}
        warm.pop("KKC_NO_CACHE", None)
        kkc_times, warm_times, kz_times = [], [], []
        for _ in range(RUNS):
            shutil.rmtree(work / "deploy", ignore_errors=True)
            kkc_times.append(timed(kkc, work, cold))
            kz_times.append(timed([*engine.build_argv, "deploy/site-a"], work))
        timed(kkc, work, warm)  # fills the cache
        for _ in range(RUNS):
            shutil.rmtree(work / "deploy", ignore_errors=True)
            warm_times.append(timed(kkc, work, warm))
    kkc_med, kz_med = statistics.median(kkc_times), statistics.median(kz_times)
    warm_med = statistics.median(warm_times)
    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"{__import__('os').cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"engine: {engine.describe()}")
    print(f"runs: {RUNS} (deploy/ removed before each kkc run)")
    print(f"kkc build site-a        median {kkc_med * 1000:7.0f} ms  (cold: KKC_NO_CACHE=1)")
    print(f"kkc build site-a        median {warm_med * 1000:7.0f} ms  (warm caches)")
    print(f"kustomize build output  median {kz_med * 1000:7.0f} ms")
    print(f"ratio kkc/kustomize     {kkc_med / kz_med:.2f}x  (cold)")
    print(f"ratio warm/cold kkc     {warm_med / kkc_med:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
