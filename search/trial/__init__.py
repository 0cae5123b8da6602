"""One trial: its spec (what it builds and how it trains), training, judging, checkpoint and export.

Plain torch and timm, plus ``ray.tune.report`` at the edge where a trial reports; never imports
the Ray Tune driver (:mod:`search.tune`).
"""
