"""Shared test settings: small thread pools, so the suite behaves on two CPU cores."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
