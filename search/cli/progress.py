"""A one-line progress bar on stderr for long work of the CLI (``search eval``'s judging, ...).

``ProgressBar(label, stream)(done, total, what)`` redraws ``label [#####.....] 40% (what)`` in place
on a terminal; elsewhere (a log file, a pipe) it prints a line at each tenth, so a log shows progress
without thousands of lines.
"""

from __future__ import annotations

import time
from typing import TextIO

WIDTH = 30


class ProgressBar:
    """Callable as ``bar(done, total, what)``; ends its line when ``done == total``."""

    def __init__(self, label: str, stream: TextIO) -> None:
        self.label, self.stream = label, stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self._tenth = -1

    def __call__(self, done: int, total: int, what: str = "") -> None:
        fraction = done / total if total else 1.0
        tenth = int(fraction * 10)
        if not self.tty and tenth == self._tenth and done < total:
            return
        self._tenth = tenth
        bar = "#" * int(fraction * WIDTH) + "." * (WIDTH - int(fraction * WIDTH))
        line = f"{self.label} [{bar}] {100 * fraction:3.0f}% {done}/{total} ({what}, {time.monotonic() - self.start:.0f} s)"
        end = "\n" if done >= total or not self.tty else ""
        self.stream.write(("\r" if self.tty else "") + line + end)
        self.stream.flush()
