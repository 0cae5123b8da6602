"""The ``search`` command line itself: behaviour shared by every sub-command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_output_cut_short_by_the_reader_is_not_an_error():
    # Like ``search show spaces/quickstart.yaml | head -1``: the reader closes the pipe early.
    proc = subprocess.Popen(
        [sys.executable, "-m", "search", "show", str(REPO / "spaces" / "quickstart.yaml")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
    )
    first = proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0, stderr
    assert first.startswith(b"space quickstart")
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr


def test_unknown_command_exits_2_with_usage():
    proc = subprocess.run([sys.executable, "-m", "search", "serch"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "invalid choice: 'serch'" in proc.stderr
