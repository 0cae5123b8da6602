"""How a search ends when it is stopped: Ctrl-C is an interruption, and a killed search leaves nothing running.

Ctrl-C (SIGINT, to the driver or to its whole process group): Ray Tune's own handler would end
``Tuner.fit()`` as if the search had run to its end (it returns normally), so the runner could not
tell an interrupted search from a finished one. :class:`Interruption` takes SIGINT for the length of
``fit()`` and hands the first one to Ray Tune's graceful stop (the one Ray Tune runs on SIGUSR1: it
writes the experiment's state one last time, with every running trial and its last checkpoint, so
that the next ``search run`` resumes it as it would after a SIGKILL), and remembers that it came. A
second Ctrl-C raises :class:`KeyboardInterrupt` at once, skipping that last snapshot (Ray Tune's own
rule). Either way nothing of the search's records is dropped.

SIGKILL: Ray starts each trial's worker process in a process group of its own (so that a terminal's
Ctrl-C does not reach it), so a SIGKILL to the search's process group misses the trial workers; they
trained on for seconds until they noticed that their raylet had gone. :func:`end_with_parent`, Ray's
``worker_process_setup_hook`` of a local search, asks the kernel to SIGKILL a worker the moment its
raylet dies (the raylet itself dies with the driver: Ray starts it fate-shared on Linux).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from typing import Any, TextIO

# The worker setup hook of a local Ray: `ray.init(runtime_env={"worker_process_setup_hook": ...})`.
WORKER_SETUP_HOOK = "search.tune.interrupt.end_with_parent"
# Ray Tune installs its SIGINT handler in fit() unless this is "1"; its SIGUSR1 handler always.
RAY_SIGINT_ENV = "TUNE_DISABLE_SIGINT_HANDLER"
PR_SET_PDEATHSIG = 1


class Interruption:
    """``with Interruption(out) as stop: tuner.fit()``; then ``stop.interrupted`` says whether a
    Ctrl-C ended it. Outside the main thread (where no signal handler can be set) it does nothing."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.interrupted = False
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> Interruption:
        if threading.current_thread() is not threading.main_thread():
            return self
        self._saved = {"handler": signal.getsignal(signal.SIGINT), "env": os.environ.get(RAY_SIGINT_ENV)}
        os.environ[RAY_SIGINT_ENV] = "1"
        signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._saved:
            return
        signal.signal(signal.SIGINT, self._saved["handler"])
        if self._saved["env"] is None:
            os.environ.pop(RAY_SIGINT_ENV, None)
        else:
            os.environ[RAY_SIGINT_ENV] = self._saved["env"]
        self._saved = {}

    def _on_sigint(self, signum: int, frame: Any) -> None:
        graceful_stop = signal.getsignal(signal.SIGUSR1)  # Ray Tune's, while fit() runs its loop
        if self.interrupted or not callable(graceful_stop):
            self.interrupted = True
            raise KeyboardInterrupt
        self.interrupted = True
        print("interrupted: saving the state of the running trials (Ctrl-C again to stop at once)",
              file=self.stream or sys.stdout, flush=True)
        graceful_stop(signum, frame)
        # Ray Tune's handler puts back the SIGINT handler it found, which is this one: a second
        # Ctrl-C comes here again and stops at once.


def end_with_parent() -> None:
    """Ray's worker setup hook (see the module docstring): SIGKILL this worker when its parent, the
    raylet, dies. Linux only; elsewhere a worker ends when it notices that its raylet is gone."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    raylet = os.environ.get("RAY_RAYLET_PID")
    if raylet and raylet.isdigit() and os.getppid() != int(raylet):
        os._exit(1)  # the raylet died before the request above took effect
