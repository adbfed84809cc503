#!/usr/bin/env python3
"""make bench: kkc against the bare `kustomize build` of its own output, for one site and
for generated fleets (tools/fleetgen.py), on this machine, in scratch repositories.

1. One site: `kkc build site-a`, cold (deploy/ removed, KKC_NO_CACHE=1) and warm (kkc's
   caches filled by one run first), BENCH_RUNS times each (default 7), against the bare
   kustomize build of its output; medians and their ratio.
2. For each fleet size of BENCH_SITES (default 10,100; e.g. BENCH_SITES=10,100,1000), in a
   git repository of that many generated sites, with an empty KKC_CACHE_DIR of its own,
   and BENCH_JOBS parallelism (default: the number of CPUs), one run each:
   - cold: `kkc build --all --jobs N` into an empty deploy/ and an empty cache, against the
     bare kustomize builds of the same outputs, N at a time (`xargs -P N`);
   - warm (nothing changed, deploy/ committed): `kkc build --all`, `kkc check --all`,
     `kkc diff --all`, each as a percentage of the cold build;
   - at the size BENCH_CHANGE_AT (default 100, else the largest size): one site's
     definition changed, then a base file (base/heat/, read by the sites with Heat), then
     an overlay's defaults (overlays/monitoring/); the sites kkc ran kustomize for (its
     plain progress lines, `ok` against `ok, cached`) must be exactly the sites concerned;
   - the peak RSS of the kkc process (and of its largest child: a worker or kustomize)
     of the cold build and of the warm check, from getrusage() at its exit.
   Fleets of more than BENCH_FULL_UPTO sites (default: no limit) run the cold build only
   (its time and peak RSS): 1,000 full sites take about 25 minutes cold on 2 cores.

Times are wall-clock (time.perf_counter around each command). Ratios are comparable across
machines; absolute times are not. The table goes to stdout."""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fleetgen  # noqa: E402 (the generator beside this file)
import yaml  # noqa: E402

PROJECT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
# fleets of more sites than this measure only the cold build (its time and peak RSS)
FULL_UPTO = int(os.environ.get("BENCH_FULL_UPTO", "1000000"))
# kkc run in-process by python, which prints its own peak RSS and that of its largest
# waited-for descendant at exit (getrusage); stdin-less -c, so spawn workers import kkc only
_RSS = (
    "import atexit, resource, runpy, sys\n"
    "def _rss():\n"
    "    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "    print(f'bench-rss {me} {kids}', file=sys.stderr)\n"
    "atexit.register(_rss)\n"
    "sys.argv = ['kkc', *sys.argv[1:]]\n"
    "runpy.run_module('kkc', run_name='__main__')\n"
)
_LINE = re.compile(r"^kkc \w+: \[\d+/\d+\] (\S+) (ok, cached|ok|failed|does not load) \(")
_SUMMARY = re.compile(r"^kkc \w+: \d+ sites, .*$", re.M)


@dataclass
class Run:
    seconds: float
    stderr: str = ""
    rss_kib: int = 0  # the kkc process
    child_rss_kib: int = 0  # its largest child (a worker or a kustomize)

    def summary(self) -> str:
        m = _SUMMARY.search(self.stderr)
        return m.group(0) if m else "(no summary line)"

    def states(self) -> dict[str, str]:
        """Each site's progress line state: ok (kustomize ran), ok, cached, failed..."""
        out = {}
        for line in self.stderr.splitlines():
            m = _LINE.match(line)
            if m:
                out[m.group(1)] = m.group(2)
        return out


@dataclass
class FleetResult:
    sites: int
    jobs: int
    cold: Run
    floor: float
    warm: Run
    check: Run
    diff: Run
    changes: list[tuple[str, list[str], list[str], Run]] = field(default_factory=list)


def run(
    args: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,), shell=False
) -> Run:
    start = time.perf_counter()
    done = subprocess.run(
        args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        shell=shell,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode not in ok:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"bench: `{args if shell else ' '.join(args)}` exited {done.returncode}")
    result = Run(seconds, done.stderr)
    m = re.search(r"^bench-rss (\d+) (\d+)$", done.stderr, re.M)
    if m:
        result.rss_kib, result.child_rss_kib = int(m.group(1)), int(m.group(2))
    return result


def kkc(*args: str) -> list[str]:
    return [sys.executable, "-c", _RSS, *args]


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def machine() -> list[str]:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
        memory = f"{int(mem) / 1024 / 1024:.1f} GiB"
    except OSError:
        memory = "unknown memory"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"machine: {platform.machine()}, {model}, {os.cpu_count()} cores, {memory}, "
        f"Python {platform.python_version()}, load average {load}"
    ]


def single_site(engine) -> list[str]:
    """The one-site series (as before the fleets): medians of RUNS runs each."""
    with tempfile.TemporaryDirectory(prefix="kkc-bench-") as tmp:
        work = Path(tmp)
        for part in ("sites", "base", "overlays"):
            if (PROJECT / part).is_dir():
                shutil.copytree(PROJECT / part, work / part)
        build = [shutil.which("kkc") or "kkc", "build", "site-a"]
        cold = {**os.environ, "KKC_NO_CACHE": "1"}
        warm = {**os.environ, "KKC_CACHE_DIR": str(work / ".cache")}
        warm.pop("KKC_NO_CACHE", None)
        kkc_times, warm_times, kz_times = [], [], []
        for _ in range(RUNS):
            shutil.rmtree(work / "deploy", ignore_errors=True)
            kkc_times.append(run(build, work, cold).seconds)
            kz_times.append(run([*engine.build_argv, "deploy/site-a"], work, cold).seconds)
        run(build, work, warm)  # fills the cache
        for _ in range(RUNS):
            shutil.rmtree(work / "deploy", ignore_errors=True)
            warm_times.append(run(build, work, warm).seconds)
    kkc_med, kz_med = statistics.median(kkc_times), statistics.median(kz_times)
    warm_med = statistics.median(warm_times)
    return [
        f"## one site (site-a), {RUNS} runs each, medians",
        "",
        "| command | median | ratio |",
        "| --- | --- | --- |",
        f"| `kkc build site-a` cold (`KKC_NO_CACHE=1`) | {kkc_med * 1000:.0f} ms | "
        f"{kkc_med / kz_med:.2f}x kustomize |",
        f"| `kkc build site-a` warm caches | {warm_med * 1000:.0f} ms | "
        f"{warm_med / kkc_med:.2f}x cold |",
        f"| `{' '.join(engine.build_argv)} deploy/site-a` | {kz_med * 1000:.0f} ms | 1 |",
    ]


def _changed(after: Run) -> list[str]:
    """The sites kustomize ran for in ``after`` (ok, not ok, cached)."""
    return sorted(name for name, state in after.states().items() if state == "ok")


def one_change(work: Path, env: dict[str, str], jobs: int, sites) -> list:
    """Three changes in turn, each followed by `kkc build --all`: (what, expected sites,
    sites kustomize ran for, the run)."""
    out = []
    target = sites[len(sites) // 2]
    path = work / "sites" / target.name / "site.yaml"
    data = yaml.safe_load(path.read_text())
    data["services"]["keystone"]["api"]["replicas"] = target.replicas % 3 + 1
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run(kkc("build", "--all", "--jobs", str(jobs)), work, env)
    out.append((f"one site's definition (sites/{target.name}/site.yaml)", [target.name],
                _changed(result), result))  # fmt: skip
    base = work / "base" / "heat" / "services" / "heat-engine-deployment.yaml"
    base.write_text(base.read_text() + "# changed by make bench\n")
    result = run(kkc("build", "--all", "--jobs", str(jobs)), work, env)
    out.append(("a base file (base/heat/services/heat-engine-deployment.yaml)",
                fleetgen.users(sites, service="heat"), _changed(result), result))  # fmt: skip
    overlay = work / "overlays" / "monitoring" / "defaults.yaml"
    text = overlay.read_text()
    overlay.write_text(text.replace("release: kube-prometheus-stack", "release: bench-prometheus"))
    assert overlay.read_text() != text, "overlays/monitoring/defaults.yaml: no release label"
    result = run(kkc("build", "--all", "--jobs", str(jobs)), work, env)
    out.append(("an overlay's defaults (overlays/monitoring/defaults.yaml: its labels)",
                fleetgen.users(sites, overlay="monitoring"), _changed(result), result))  # fmt: skip
    return out


def fleet(engine, count: int, jobs: int, change: bool, top: Path) -> FleetResult:
    work = top / f"fleet-{count}"
    sites = fleetgen.make_fleet(PROJECT, work, count)
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "fleet")
    env = {**os.environ, "KKC_CACHE_DIR": str(top / f"cache-{count}"), "KKC_PROGRESS": "plain"}
    env.pop("KKC_NO_CACHE", None)
    all_jobs = ("--all", "--jobs", str(jobs))
    print(f"bench: {count} sites: cold build", file=sys.stderr, flush=True)
    cold = run(kkc("build", *all_jobs), work, env)
    if count > FULL_UPTO:  # the cold build's time and peak RSS only
        shutil.rmtree(work)
        shutil.rmtree(top / f"cache-{count}", ignore_errors=True)
        return FleetResult(count, jobs, cold, 0.0, Run(0.0), Run(0.0), Run(0.0))
    argv = " ".join(engine.build_argv)
    floor = run(
        f"printf '%s\\0' deploy/*/ | xargs -0 -n 1 -P {jobs} {argv} > /dev/null",
        work, env, shell=True,
    ).seconds  # fmt: skip
    git(work, "add", "-A")
    git(work, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "built")
    print(f"bench: {count} sites: warm build, check, diff", file=sys.stderr, flush=True)
    warm = run(kkc("build", *all_jobs), work, env)
    check = run(kkc("check", *all_jobs), work, env)
    diff = run(kkc("diff", *all_jobs), work, env)
    result = FleetResult(count, jobs, cold, floor, warm, check, diff)
    if change:
        print(f"bench: {count} sites: one change", file=sys.stderr, flush=True)
        result.changes = one_change(work, env, jobs, sites)
    shutil.rmtree(work)
    shutil.rmtree(top / f"cache-{count}", ignore_errors=True)
    return result


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def fleet_table(results: list[FleetResult]) -> list[str]:
    lines = [
        "## generated fleets (one run each)",
        "",
        "| sites | jobs | cold `kkc build --all` | bare kustomize, same -P | ratio "
        "| warm build | warm `check --all` | warm `diff --all` |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        c = r.cold.seconds
        if not r.floor:
            lines.append(f"| {r.sites} | {r.jobs} | {c:.1f} s | (BENCH_FULL_UPTO) | | | | |")
            continue
        lines.append(
            f"| {r.sites} | {r.jobs} | {c:.1f} s | {r.floor:.1f} s | {c / r.floor:.2f}x "
            f"| {r.warm.seconds:.1f} s ({100 * r.warm.seconds / c:.1f} %) "
            f"| {r.check.seconds:.1f} s ({100 * r.check.seconds / c:.1f} %) "
            f"| {r.diff.seconds:.1f} s ({100 * r.diff.seconds / c:.1f} %) |"
        )
    lines += [
        "",
        "Peak RSS (getrusage at exit: the kkc process / its largest child):",
        "",
        "| sites | cold `build --all` | warm `check --all` |",
        "| --- | --- | --- |",
    ]
    for r in results:
        check = f"{_mib(r.check.rss_kib)} / {_mib(r.check.child_rss_kib)}" if r.floor else ""
        lines.append(
            f"| {r.sites} | {_mib(r.cold.rss_kib)} / {_mib(r.cold.child_rss_kib)} | {check} |"
        )
    if len(results) > 1:
        first, last = results[0], results[-1]
        for what, a, b in (
            ("cold build", first.cold.rss_kib, last.cold.rss_kib),
            ("warm check", first.check.rss_kib, last.check.rss_kib),
        ):
            if not (a and b):
                continue
            lines.append(
                f"\nkkc process peak RSS growth, {what}, {first.sites} -> {last.sites} sites: "
                f"{100 * (b - a) / a:+.1f} %"
            )
    for r in results:
        for what, expected, rebuilt, run_ in r.changes:
            verdict = "exactly those" if rebuilt == sorted(expected) else "MISMATCH"
            lines += [
                "",
                f"One change of {r.sites}: {what}: kustomize ran for {len(rebuilt)} sites, "
                f"{len(expected)} use it: {verdict}; {run_.seconds:.1f} s "
                f"({100 * run_.seconds / r.cold.seconds:.1f} % of cold); {run_.summary()}",
            ]
            if verdict != "exactly those":
                lines.append(f"  expected {sorted(expected)}, got {rebuilt}")
    return lines


def main() -> int:
    from kkc.kustomize import find_engine

    engine = find_engine()
    sizes = [int(s) for s in os.environ.get("BENCH_SITES", "10,100").split(",") if s.strip()]
    jobs = int(os.environ.get("BENCH_JOBS", str(os.cpu_count() or 1)))
    change_at = int(os.environ.get("BENCH_CHANGE_AT", "100"))
    if change_at not in sizes and sizes:
        change_at = max(sizes)
    out = [*machine(), f"engine: {engine.describe()}", ""]
    out += single_site(engine) if RUNS > 0 else []
    results = []
    with tempfile.TemporaryDirectory(prefix="kkc-bench-fleet-") as tmp:
        for count in sizes:
            results.append(fleet(engine, count, jobs, count == change_at, Path(tmp)))
    if results:
        out += ["", *fleet_table(results)]
    out += ["", *machine()]
    print("\n".join(out))
    bad = any(rebuilt != sorted(exp) for r in results for _w, exp, rebuilt, _r in r.changes)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
