"""The study report as one HTML page: what a researcher reads instead of the MLflow columns.

Sections, in order: the search (space, objectives, corruption table, trials by outcome); every trial
against the front (the tracker's own figure, search.tracking.plots); hypervolume over the finished
trials; each searched component's effect on each objective; the front members' errors per
corruption and severity; attention stability and head diversity; the confirmation by new seeds.
plotly.js is inlined once in the page's head, so the file opens offline (and inside the MLflow UI).
Elements that carry figures have ids (``trial-count``, ``front-table``, ``fig-errors``...) so
that a test can read them back.
"""

from __future__ import annotations

import datetime
import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from search.results.effects import CONFIDENCE, MIN_TRIALS, RESAMPLES, Effect
from search.results.study import ATTENTION_METRICS, Study

_VERDICT_COLOURS = {"better": "#1a7f37", "worse": "#d62728", "unclear": "#9e9e9e"}
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
  padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6rem 0;font-size:.88rem}
th,td{border:1px solid #ddd;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.warn{color:#a15c00}.ok{color:#1a7f37}.note{color:#555;font-size:.9rem}
dl.summary{display:grid;grid-template-columns:max-content auto;gap:.15rem 1rem}dl.summary dt{font-weight:600}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def fmt(value: float | None, spec: str = ".4g") -> str:
    """How the page writes a number (``n/a`` when there is none)."""
    return "n/a" if value is None else format(value, spec)


def _param(value: Any) -> str:
    if value is None:
        return "-"  # does not apply to this trial
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def _table(table_id: str, header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table whose cells are given as HTML (``<td ...>`` included)."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _td(text: str, num: bool = False, **data: str) -> str:
    attrs = "".join(f' data-{k.replace("_", "-")}="{_esc(v)}"' for k, v in data.items())
    return f'<td{" class=num" if num else ""}{attrs}>{_esc(text)}</td>'


def _figure(fig: Any, div_id: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False})


def _direction(direction: str) -> str:
    return "higher is better" if direction == "max" else "lower is better"


# ---- sections -------------------------------------------------------------------------------------
def _summary(study: Study) -> str:
    c = study.counts
    objectives = "; ".join(f"{m} ({_direction(d)})" for m, d in study.objectives)
    rows = [
        ("space", f'<span id="space-name">{_esc(study.space_name)}</span>'),
        ("run folder", _esc(study.run_folder)),
        ("objectives", _esc(objectives)),
        ("corruption table", f'<span id="corruption-table">{_esc(study.corruption_table)}</span>'),
        ("trials", f'<span id="trial-count">{study.trials}</span>: <span id="finished-count">{c["finished"]}</span> '
                   f'finished, <span id="stopped-count">{c["stopped"]}</span> stopped early, <span id="failed-count">'
                   f'{c["failed"]}</span> failed' + (f", {c['running']} unfinished" if c["running"] else "")),
        ("Pareto front", f'<span id="front-size">{len(study.front)}</span> of '
                         f'{sum(p.ranked for p in study.points)} full-budget trials'),
    ]
    return '<dl class="summary">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _front(study: Study) -> str:
    from search.tracking.plots import front_figure  # the tracker's figure: one drawing of the front

    header = ["trial", *[m for m, _ in study.objectives], *study.searched]
    rows = [
        [_td(p.trial_id, trial=p.trial_id)]
        + [_td(fmt(v), True, trial=p.trial_id, metric=m, value=repr(v)) for (m, _), v in zip(study.objectives, p.values, strict=True)]
        + [_td(_param(p.params.get(k))) for k in study.searched]
        for p in study.front
    ]
    table = _table("front-table", header, rows) if rows else '<p class="warn">No trial finished its full budget: the front is empty.</p>'
    return (_figure(front_figure(study.points, study.objectives), "fig-front")
            + "<p>The front's members (best first objective first):</p>" + table)


def _hypervolume(study: Study) -> str:
    import plotly.graph_objects as go

    if not study.hypervolume:
        return '<p class="warn">No full-budget trial yet: no hypervolume.</p>'
    steps = study.hypervolume
    fig = go.Figure(go.Scatter(
        x=[s.step for s in steps], y=[s.hypervolume for s in steps], mode="lines+markers", name="hypervolume",
        text=[f"after {s.trial_id}: front of {s.front_size}" for s in steps], hovertemplate="%{y:.4g}<br>%{text}"))
    fig.update_layout(title="Hypervolume after each full-budget trial, in the order they finished",
                      xaxis_title="full-budget trials finished", yaxis_title="hypervolume", template="plotly_white",
                      height=380)
    where = "the tracker's history" if study.hypervolume_source == "tracker" else "recomputed from the records"
    return (_figure(fig, "fig-hypervolume")
            + f'<p class="note">From {where}; reference point ({", ".join(fmt(r) for r in study.reference or [])}) '
              f"({', '.join(m for m, _ in study.objectives)}). Final: <span id=\"final-hypervolume\">"
              f"{fmt(steps[-1].hypervolume)}</span> with {steps[-1].front_size} on the front.</p>")


def _effect_row(e: Effect) -> list[str]:
    interval = "n/a" if e.low is None else f"[{fmt(e.low, '+.3g')}, {fmt(e.high, '+.3g')}]"
    how = f"matched ({e.pairs} groups)" if e.matched else "unmatched"
    verdict = (f'<td class="ok">{e.verdict}</td>' if e.conclusive else f'<td class="warn">{_esc(e.warning)}</td>')
    return [_td(e.param), _td(f"{e.level} vs {e.baseline}"), _td(fmt(e.estimate, "+.3g"), True, param=e.param,
            level=e.level, metric=e.metric, value=repr(e.estimate)), _td(interval, True), _td(f"{e.n_level} / {e.n_baseline}", True),
            _td(how), verdict]


def _effects_table(table_id: str, effects: Sequence[Effect]) -> str:
    header = ["component", "level vs baseline", "difference", f"{CONFIDENCE:.0%} interval", "trials (level / baseline)",
              "pairing", "conclusion"]
    return _table(table_id, header, [_effect_row(e) for e in effects])


def _forest(effects: Sequence[Effect], metric: str, direction: str, div_id: str) -> str:
    """The differences of one metric with their intervals, one row per comparison."""
    import plotly.graph_objects as go

    labels = [f"{e.param}: {e.level} vs {e.baseline}" for e in effects]
    xs = [e.estimate for e in effects]
    fig = go.Figure(go.Scatter(
        x=xs, y=labels, mode="markers",
        marker=dict(size=10, color=[_VERDICT_COLOURS[e.verdict] for e in effects]),
        error_x=dict(type="data", symmetric=False,
                     array=[(e.high - e.estimate) if e.high is not None else 0 for e in effects],
                     arrayminus=[(e.estimate - e.low) if e.low is not None else 0 for e in effects]),
        text=[f"n = {e.n_level} / {e.n_baseline}, {'matched' if e.matched else 'unmatched'}"
              + (f"<br>{e.warning}" if e.warning else "") for e in effects],
        hovertemplate="%{y}: %{x:+.3g}<br>%{text}<extra></extra>"))
    fig.add_vline(x=0, line_color="#555", line_width=1)
    fig.update_layout(title=f"Effect on {metric} ({_direction(direction)}); green: better, red: worse, grey: no conclusion",
                      xaxis_title=f"difference in {metric}", template="plotly_white",
                      height=160 + 32 * len(effects), margin=dict(l=260), yaxis=dict(autorange="reversed"))
    return _figure(fig, div_id)


def _effects(study: Study, metrics: Sequence[tuple[str, str]], prefix: str) -> str:
    parts = []
    notes = [f"<li>{_esc(pe.param)}: {_esc(pe.note)}</li>" for pe in study.effects if pe.note]
    for i, (metric, direction) in enumerate(metrics):
        effects = [e for pe in study.effects for e in pe.effects if e.metric == metric]
        parts.append(f"<h3>{_esc(metric)} ({_direction(direction)})</h3>")
        if not effects:
            parts.append('<p class="warn">No comparison possible (no component had two levels among the full-budget trials).</p>')
            continue
        parts.append(_forest(effects, metric, direction, f"fig-{prefix}-{i}"))
        parts.append(_effects_table(f"{prefix}-table-{i}", effects))
    if notes and prefix == "effects":
        parts.append("<p>Not compared:</p><ul>" + "".join(notes) + "</ul>")
    return "".join(parts)


def _effects_intro() -> str:
    return (
        '<p class="note">Each searched component, level by level against a baseline (the space\'s first choice; '
        "for a numeric range the lowest value, or the lower half when more than a few values were tried), "
        "on the full-budget trials. <b>Matched</b>: the mean difference within groups of trials that share every "
        f"other searched value (used when at least {MIN_TRIALS} such groups exist); <b>unmatched</b>: the "
        f"difference of the two means. Interval: percentile bootstrap, {RESAMPLES:,} resamples, seeded. "
        f"A figure with fewer than {MIN_TRIALS} trials on a side, or whose interval covers 0, is marked: "
        "it cannot carry a conclusion.</p>"
    )


def _errors(study: Study) -> str:
    import plotly.graph_objects as go

    grid = study.errors
    if not grid.members or not grid.corruptions:
        return '<p class="warn">No front member has per-corruption errors (no front, or judged without corruptions).</p>'
    columns = [f"{c} s{s}" for c, s in grid.columns()]
    full = go.Figure(go.Heatmap(z=grid.flat(), x=columns, y=grid.members, colorscale="Reds", colorbar=dict(title="error %"),
                                hovertemplate="%{y}<br>%{x}: %{z:.4g} %<extra></extra>"))
    full.update_layout(title="Error (%) of each front member per corruption and severity", template="plotly_white",
                       height=220 + 34 * len(grid.members), xaxis=dict(tickangle=-60, tickfont=dict(size=9)),
                       yaxis=dict(type="category"))  # a trial id of digits only stays a name
    mean = go.Figure(go.Heatmap(z=grid.by_corruption(), x=grid.corruptions, y=grid.members, colorscale="Reds",
                                colorbar=dict(title="error %"), texttemplate="%{z:.1f}",
                                hovertemplate="%{y}<br>%{x}: %{z:.4g} % (mean over severities)<extra></extra>"))
    mean.update_layout(title=f"Mean error (%) over severities {', '.join(map(str, grid.severities))}",
                       template="plotly_white", height=200 + 34 * len(grid.members), xaxis=dict(tickangle=-45),
                       yaxis=dict(type="category"))
    return _figure(full, "fig-errors") + _figure(mean, "fig-errors-by-corruption")


def _attention(study: Study) -> str:
    parts = []
    for metric in ATTENTION_METRICS:
        if metric not in study.attention:
            parts.append(f'<p id="{metric}-status"><b>{metric}</b>: not measured in this search.</p>')
    if not study.attention:
        return "".join(parts)
    measured = list(study.attention)
    rows = [[_td(p.trial_id)] + [_td(fmt(study.attention[m].get(p.trial_id), ".6g"), True, trial=p.trial_id, metric=m)
                                 for m in measured] for p in study.front]
    parts.insert(0, '<p class="note">attention_stability: clean-vs-corrupted attention cosine (higher is more stable); '
                    "head_diversity: the heads' mean pairwise cosine (lower is more diverse). The front's members:</p>"
                 + _table("attention-table", ["trial", *measured], rows))
    parts.append(_effects(study, [(m, ATTENTION_METRICS[m]) for m in measured if m not in dict(study.objectives)],
                          "attention-effects"))
    return "".join(parts)


def _confirmation(study: Study) -> str:
    conf = study.confirmation
    if conf is None:
        return (f'<p id="confirmation-status">Not confirmed yet: <code>search confirm {_esc(study.space_name)} '
                "--seeds 3</code> retrains the front's members with new seeds; this section then shows which survive.</p>")
    survivors = set(conf.survivors())
    params = [k for k in study.searched if any(k in m.params for m in conf.members)]
    header = ["trial", "survives", *[f"{m} search → confirmed" for m, _ in conf.objectives], "seeds done", *params]
    rows = []
    for member in conf.members:
        cells = [_td(member.trial_id),
                 f'<td class="{"ok" if member.trial_id in survivors else "warn"}" data-trial="{_esc(member.trial_id)}">'
                 f'{"yes" if member.trial_id in survivors else "no"}</td>']
        for i, (metric, _) in enumerate(conf.objectives):
            mean, std = member.mean(i), member.std(i)
            spread = "" if std is None else f" ± {fmt(std, '.3g')}"
            cells.append(_td(f"{fmt(member.search_values[i])} → {fmt(mean)}{spread}", True, trial=member.trial_id,
                             metric=metric))
        ok = sum(all(v is not None for v in r.values) for r in member.runs)
        cells.append(_td(f"{ok} of {len(conf.seeds)}", True))  # a seed not run yet (interrupted) counts as missing
        cells += [_td(_param(member.params.get(k))) for k in params]
        rows.append(cells)
    return (f'<p class="note">Each front member retrained with seeds {_esc(", ".join(map(str, conf.seeds)))}: the '
            "search's value → the new seeds' mean ± standard deviation. A member survives when its mean is still "
            "non-dominated among the confirmed members' means.</p>" + _table("confirmation-table", header, rows))


def render_page(study: Study) -> str:
    """The whole page as one HTML string (plotly.js inlined)."""
    from plotly.offline import get_plotlyjs

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        ("Every trial against the front", _front(study)),
        ("Hypervolume over time", _hypervolume(study)),
        ("What each component does", _effects_intro() + _effects(study, study.objectives, "effects")),
        ("Errors of the front per corruption and severity", _errors(study)),
        ("Attention stability and head diversity", _attention(study)),
        ("Confirmation with new seeds", _confirmation(study)),
    ]
    body = "".join(f'<section id="section-{i}"><h2>{i}. {_esc(title)}</h2>{content}</section>'
                   for i, (title, content) in enumerate(sections, start=1))
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Study report: {_esc(study.space_name)}</title>'
        f"<style>{_CSS}</style><script>{get_plotlyjs()}</script></head><body>"
        f"<h1>Study report: {_esc(study.space_name)}</h1><p class=\"note\">written {stamp} by <code>search report</code></p>"
        f"{_summary(study)}{body}</body></html>"
    )


def write_page(study: Study, path: str | os.PathLike) -> Path:
    """Write the page to ``path`` (its folder created when missing) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_page(study), encoding="utf-8")
    return path
