"""The search: YAML spaces over the component zoo, explored by Ray Tune with Optuna, tracked in MLflow.

This is the only package that imports Ray, Optuna and MLflow; it builds on :mod:`components`
(what a model is made of) and :mod:`evaluation` (how a model is judged).
"""
