"""How a model is judged: data sets, the corruption engine, cached corrupted sets, metrics.

Sub-modules: :mod:`evaluation.data` (data sets, ``normalize``), :mod:`evaluation.corruptions`
(``corrupt`` and the tables), :mod:`evaluation.corrupted_set` (``build_corrupted_set``),
:mod:`evaluation.metrics` (pure metric functions) and :mod:`evaluation.report` (``evaluate``,
``RobustnessReport``). Imports torch, timm, NumPy, scikit-learn and imagecorruptions; never ``search``.
"""
