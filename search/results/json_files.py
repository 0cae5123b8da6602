"""Strict JSON for the run folder's files: NaN/inf become null, and writes are atomic.

Every file a search writes under its run folder (trial records, the confirmation, checkpoint metadata)
goes through :func:`write_json`, so a reader never sees half a file, even when the writer is killed,
and a shared run folder stays readable by its group (``mkstemp`` alone creates files with mode 0600).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def json_safe(value: Any) -> Any:
    """Replace NaN/inf by None recursively, and tuples by lists, so ``json.dump`` output is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_json(path: str | os.PathLike, data: Any, mode: int = 0o644) -> Path:
    """Write ``data`` (made strict with :func:`json_safe`) to ``path`` atomically: temporary file + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(json_safe(data), fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
