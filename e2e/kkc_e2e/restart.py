"""What the kubelet and the Job controller do when a container exits, for the harness's
pods: a workload's container (restartPolicy Always: Deployments, StatefulSets,
DaemonSets) starts again after an exponential back-off, and a Job's pod is retried up
to its ``backoffLimit``. The delays are the kubelet's (10 s, doubling after each exit,
back to 10 s once the container ran for twice the cap without exiting) with a smaller
cap: the kubelet's 5 min (a Job's 6 min) would only make a run wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

INITIAL = 10.0  # the kubelet's first restart delay
CAP = 40.0  # the kubelet caps at 300 s, a Job's back-off at 360 s
RESET = 2 * CAP  # the kubelet forgets the back-off after 2 x its cap without an exit


@dataclass
class BackOff:
    """The restart delay of one container (or of one Job's pods)."""

    initial: float = INITIAL
    cap: float = CAP
    reset: float = RESET
    delay: float = 0.0  # the last delay given (0: none yet, or forgotten)

    def next(self, ran: float) -> float:
        """The delay before the next start, after a run of RAN seconds that ended."""
        if ran >= self.reset:
            self.delay = 0.0
        self.delay = self.initial if not self.delay else min(self.delay * 2, self.cap)
        return self.delay


class Supervisor:
    """Restarts the containers it watches when they exit, as the kubelet does for
    restartPolicy Always: after the back-off of each container, counting the restarts
    (``Container.restarts``, ``Container.exits``). A container being stopped by the
    harness (``Container.stopping``) is not restarted. ``tick`` is one pass (the tests
    drive it with a clock of their own); ``start`` runs it every ``every`` seconds in a
    thread until ``close``."""

    def __init__(self, log: Callable[[str], None] = print, clock=time.monotonic) -> None:
        self.watched: list = []
        self.log, self.clock = log, clock
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, ctr) -> None:
        with self.lock:
            self.watched.append(ctr)

    def forget(self, ctr) -> None:
        with self.lock:
            if ctr in self.watched:
                self.watched.remove(ctr)

    def tick(self) -> None:
        with self.lock:
            watched = list(self.watched)
        for ctr in watched:
            try:
                self._tick_one(ctr)
            except Exception as exc:  # noqa: BLE001 - the thread must go on; say it
                self.log(f"{ctr.tag}: restart failed: {type(exc).__name__}: {exc}")

    def _tick_one(self, ctr) -> None:
        now = self.clock()
        with ctr.lock:
            if ctr.stopping or ctr.proc is None or ctr.proc.poll() is None:
                return
            if ctr.restart_at is None:  # it has just exited
                code = ctr.proc.returncode
                ran = now - ctr.started_at
                ctr.reap()  # what is left of its processes goes with it, as in a cluster
                delay = ctr.backoff.next(ran)
                ctr.exits.append(code)
                ctr.restart_at = now + delay
                self.log(
                    f"{ctr.tag} exited with {code} after {ran:.0f} s: restart in {delay:.0f} s"
                )
                return
            if now < ctr.restart_at:
                return
            ctr.restart_at = None
            ctr.restarts += 1
            ctr.start()
            ctr.started_at = now
        self.log(f"{ctr.tag} restarted ({ctr.restarts} restarts)")
        code = ctr.post_start()  # the kubelet runs the hook after every start
        if code not in (None, 0):
            self.log(f"{ctr.tag}: postStart hook exited with {code}")

    def start(self, every: float = 0.5) -> None:
        def loop() -> None:
            while not self._stop.wait(every):
                self.tick()

        self._thread = threading.Thread(target=loop, name="kubelet", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)


@dataclass
class Attempts:
    """How a Job's pod went: whether it completed, and the exit codes of the failed
    attempts before (each one counts against the Job's backoffLimit)."""

    ok: bool
    failures: list[int]
    last: object = None  # what the last attempt returned (the failing container's log)


def retry_job(
    attempt: Callable[[], tuple[int, object]],
    backoff_limit: int,
    sleep: Callable[[float], None] = time.sleep,
    backoff: BackOff | None = None,
) -> Attempts:
    """Run ATTEMPT (-> exit code, detail) until it exits 0 or has failed more than
    BACKOFF_LIMIT times, waiting the Job controller's back-off between attempts (the
    delays double from 10 s; the attempts of a Job follow one another, so no reset)."""
    backoff = backoff or BackOff(reset=float("inf"))
    failures: list[int] = []
    while True:
        code, detail = attempt()
        if code == 0:
            return Attempts(True, failures, detail)
        failures.append(code)
        if len(failures) > backoff_limit:
            return Attempts(False, failures, detail)
        sleep(backoff.next(0.0))
