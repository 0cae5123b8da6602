"""This user's cache folder for the project: ``$XDG_CACHE_HOME/robust-vit-search`` (``~/.cache`` by
default). What lives there can always be made again; a folder that cannot be written only costs speed."""

from __future__ import annotations

import os
from pathlib import Path


def cache_folder() -> Path:
    """The project's folder in this user's cache (not created here)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "robust-vit-search"
