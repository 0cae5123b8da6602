"""The search space: the schema of a space file, its loading and validation, and how Optuna samples it.

``load_space(path)`` reads and validates a YAML file into a :class:`SearchSpace`; ``schema`` holds
every field with its type, default and valid values; ``sampling`` is the define-by-run space of
Optuna. Plain Python: nothing here starts Ray, Optuna or MLflow at import.
"""

from search.space.loader import Param, SearchSpace, load_space, objective_metrics, parse_space

__all__ = ["Param", "SearchSpace", "load_space", "objective_metrics", "parse_space"]
