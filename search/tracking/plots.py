"""Pictures of the Pareto front for the parent run: a static PNG (matplotlib) and an interactive HTML
page (plotly, with plotly.js inlined so that it opens offline and inside the MLflow UI).

Both show every placed trial on the first two objectives: the front as large connected markers,
dominated full-budget trials as small markers, trials without their full budget as grey crosses.
With one objective the x axis is the trial's position instead; with more than two, the title says
that the front is computed on all of them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from search.results.front import Objective, TrialPoint, searched_params

_FRONT_COLOUR = "#d62728"
_OTHER_COLOUR = "#1f77b4"
_PARTIAL_COLOUR = "#9e9e9e"


def _label(objective: Objective) -> str:
    metric, direction = objective
    return f"{metric} ({'higher' if direction == 'max' else 'lower'} is better)"


def _axes(points: Sequence[TrialPoint], objectives: Sequence[Objective]) -> tuple[list[float], list[float], str, str]:
    """x and y for every point (None values become NaN and are not drawn) and the axis labels."""
    nan = float("nan")
    if len(objectives) == 1:
        xs = [float(i) for i in range(len(points))]
        ys = [nan if p.values[0] is None else p.values[0] for p in points]
        return xs, ys, "trial", _label(objectives[0])
    xs = [nan if p.values[0] is None else p.values[0] for p in points]
    ys = [nan if p.values[1] is None else p.values[1] for p in points]
    return xs, ys, _label(objectives[0]), _label(objectives[1])


def _title(points: Sequence[TrialPoint], objectives: Sequence[Objective]) -> str:
    front = sum(p.on_front for p in points)
    extra = f"; front over all {len(objectives)} objectives" if len(objectives) > 2 else ""
    return f"Pareto front: {front} of {sum(p.ranked for p in points)} full-budget trials{extra}"


def _groups(points: Sequence[TrialPoint]) -> dict[str, list[int]]:
    return {
        "Pareto front": [i for i, p in enumerate(points) if p.on_front],
        "dominated": [i for i, p in enumerate(points) if p.ranked and not p.on_front],
        "partial budget": [i for i, p in enumerate(points) if not p.ranked],
    }


def _front_line(xs: list[float], ys: list[float], front: list[int], objectives: Sequence[Objective]) -> list[int]:
    """The front's points in x order, for the connecting line (only meaningful for 2 objectives)."""
    if len(objectives) != 2:
        return []
    return sorted(front, key=lambda i: (xs[i], ys[i]))


def write_png(points: Sequence[TrialPoint], objectives: Sequence[Objective], path: str | os.PathLike) -> None:
    """A static scatter plot of all trials with the front highlighted, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # no display: Ray workers and CI have none
    import matplotlib.pyplot as plt

    xs, ys, xlabel, ylabel = _axes(points, objectives)
    groups = _groups(points)
    fig, ax = plt.subplots(figsize=(7.5, 5.5), dpi=110)
    try:
        part = groups["partial budget"]
        if part:
            ax.scatter([xs[i] for i in part], [ys[i] for i in part], marker="x", c=_PARTIAL_COLOUR, label="partial budget")
        dom = groups["dominated"]
        if dom:
            ax.scatter([xs[i] for i in dom], [ys[i] for i in dom], s=30, c=_OTHER_COLOUR, alpha=0.7, label="dominated")
        front = groups["Pareto front"]
        line = _front_line(xs, ys, front, objectives)
        if line:
            ax.plot([xs[i] for i in line], [ys[i] for i in line], c=_FRONT_COLOUR, lw=1, alpha=0.6)
        ax.scatter([xs[i] for i in front], [ys[i] for i in front], s=80, c=_FRONT_COLOUR, edgecolors="black", label="Pareto front", zorder=3)
        for i in front:
            ax.annotate(points[i].trial_id, (xs[i], ys[i]), textcoords="offset points", xytext=(5, 5), fontsize=7)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(_title(points, objectives), fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)


def front_figure(points: Sequence[TrialPoint], objectives: Sequence[Objective]):
    """The interactive plotly scatter (hover: trial id, rank, objectives, searched params): a
    ``plotly.graph_objects.Figure`` for :func:`write_html` and the study report (search.report)."""
    import plotly.graph_objects as go

    xs, ys, xlabel, ylabel = _axes(points, objectives)
    params = searched_params(points)

    def hover(i: int) -> str:
        p = points[i]
        lines = [f"<b>{p.trial_id}</b>", f"rank: {p.rank if p.ranked else 'not ranked'} ({p.status})"]
        lines += [f"{m}: {'n/a' if v is None else f'{v:.4g}'}" for (m, _), v in zip(objectives, p.values, strict=True)]
        lines += [f"{k}: {p.params.get(k)}" for k in params]
        return "<br>".join(lines)

    fig = go.Figure()
    styles = {
        "partial budget": dict(symbol="x", size=8, color=_PARTIAL_COLOUR),
        "dominated": dict(symbol="circle", size=8, color=_OTHER_COLOUR, opacity=0.7),
        "Pareto front": dict(symbol="circle", size=13, color=_FRONT_COLOUR, line=dict(width=1, color="black")),
    }
    for name, indices in _groups(points).items():
        if not indices:
            continue
        if name == "Pareto front":
            indices = _front_line(xs, ys, indices, objectives) or indices
        fig.add_trace(
            go.Scatter(
                x=[xs[i] for i in indices],
                y=[ys[i] for i in indices],
                mode="lines+markers" if name == "Pareto front" and len(objectives) == 2 else "markers",
                name=name,
                marker=styles[name],
                line=dict(color=_FRONT_COLOUR, width=1),
                text=[hover(i) for i in indices],
                hoverinfo="text",
            )
        )
    fig.update_layout(title=_title(points, objectives), xaxis_title=xlabel, yaxis_title=ylabel, template="plotly_white")
    return fig


def write_html(points: Sequence[TrialPoint], objectives: Sequence[Objective], path: str | os.PathLike) -> None:
    """:func:`front_figure` as a self-contained page."""
    # include_plotlyjs=True inlines plotly.js: nothing is fetched from a CDN when the page opens.
    front_figure(points, objectives).write_html(str(path), include_plotlyjs=True, full_html=True)
