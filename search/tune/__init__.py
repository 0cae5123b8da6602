"""The Ray Tune driver of a search: the runner, the Optuna searcher, schedulers and callbacks."""
