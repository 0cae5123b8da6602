"""What the tracker keeps in the run folder (``tracking/state.json``), so that a resumed search, or
``search sync`` against another server, finds the same parent run and logs the same history.

- ``search_id``: the identity of the search; the parent run carries it as a tag.
- ``reference``: the hypervolume reference point, fixed when the first trial finished, so the
  hypervolume history stays comparable (and identical when logged again).
- ``finish_order``: trial ids in the order their full-budget results were first seen; step ``n`` of
  the hypervolume history is the front of the first ``n`` of them.
- ``hypervolume``: ``[hypervolume, front size]`` per step, computed once each (a step never changes).
- ``search_status``: how the search last ended, so that ``search sync`` can close the parent run
  with the right status when the tracking server was away at the end.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from search.results.run_folder import LEGACY_TRACKING_STATE, tracking_state


@dataclass
class TrackingState:
    """The tracker's memory in the run folder (see the module docstring)."""

    search_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    reference: list[float] | None = None
    finish_order: list[str] = field(default_factory=list)
    hypervolume: list[list[float]] = field(default_factory=list)
    search_status: str = "running"  # "running" | "finished" | "interrupted" | "failed"

    @classmethod
    def load(cls, run_folder: str | os.PathLike) -> TrackingState:
        """The saved state, or a fresh one (new search id) when the run folder has none."""
        path = tracking_state(run_folder)
        if not path.exists():  # a run folder written before the state moved into its own folder
            path = Path(run_folder) / LEGACY_TRACKING_STATE
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(
            search_id=str(data["search_id"]),
            reference=data.get("reference"),
            finish_order=list(data.get("finish_order", [])),
            hypervolume=[list(step) for step in data.get("hypervolume", [])],
            search_status=str(data.get("search_status", "running")),
        )

    def save(self, run_folder: str | os.PathLike) -> None:
        """Write atomically (temporary file + rename): a killed driver never leaves half a file."""
        target = tracking_state(run_folder)
        folder = target.parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tracking.", suffix=".json", dir=folder)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(asdict(self), fh, indent=2)
                fh.write("\n")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
