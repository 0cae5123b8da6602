"""The study report (issue 16): component effects with their intervals on scripted records with a
known effect, the study's figures against the records, ``search report`` on scripted and on real run
folders, and the page opened in headless Chromium (Playwright drives the system Chromium, as in
test_mlflow_ui.py: nothing is downloaded).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from search_support import tiny_space

from search.cli import main
from search.results.confirmation import Confirmation, ConfirmedMember, SeedResult, read_confirmation
from search.results.effects import MIN_TRIALS, component_effects
from search.results.pareto import default_reference, hypervolume
from search.results.records import TrialRecord, load_records
from search.results.study import build_study, error_grid, hypervolume_steps
from search.space import load_space
from search.space.loader import Param

OBJECTIVES = [("clean_accuracy", "max"), ("mce", "min")]
MIXER = Param("mixer", "model.mixer", "choice", ("mlp", "fan"))
HEADS = Param("num_heads", "model.num_heads", "choice", (2, 4))
TAP = Param("tap", "model.tap", "choice", (False, True))
TAP_BLOCKS = Param("tap_blocks", "model.tap_blocks", "choice", ("all", "last_half"), when="tap_on")
LR = Param("lr", "train.lr", "float", low=1e-4, high=1e-2, log=True)


def record(trial_id: str, params: dict, accuracy: float, mce: float = 50.0, **kw) -> TrialRecord:
    kw.setdefault("status", "finished")
    kw.setdefault("full_budget", True)
    return TrialRecord(trial_id, params=params, final={"clean_accuracy": accuracy, "mce": mce, **kw.pop("final", {})}, **kw)


def factorial(effect: float = 0.05) -> list[TrialRecord]:
    """Every mixer x heads x TAP (x TAP's blocks when on): accuracy depends on the others, and
    mixer=fan adds exactly ``effect``."""
    out = []
    for i, (mixer, heads, tap) in enumerate(itertools.product(("mlp", "fan"), (2, 4), (False, True))):
        params = {"mixer": mixer, "num_heads": heads, "tap": tap}
        if tap:  # applies only under TAP: left out of TAP's own matching
            params["tap_blocks"] = "all" if heads == 2 else "last_half"
        base = 0.7 + 0.03 * (heads == 4) + 0.02 * tap
        out.append(record(f"t{i:02d}", params, base + effect * (mixer == "fan"), 40.0 - 2 * (heads == 4)))
    return out


def effects_of(records, params, metrics=OBJECTIVES, **kw):
    return {pe.param: pe for pe in component_effects(records, params, metrics, parents={"tap_blocks": "tap"}, **kw)}


def test_a_known_matched_effect_is_estimated_exactly_and_its_interval_covers_it():
    effects = effects_of(factorial(0.05), [MIXER, HEADS, TAP, TAP_BLOCKS])
    fan = next(e for e in effects["mixer"].effects if e.metric == "clean_accuracy")
    assert (fan.level, fan.baseline, fan.matched, fan.pairs, fan.n_level, fan.n_baseline) == ("fan", "mlp", True, 4, 4, 4)
    assert fan.estimate == pytest.approx(0.05, abs=1e-12)
    assert fan.low - 1e-12 <= 0.05 <= fan.high + 1e-12  # no noise: every pair differs by exactly 0.05
    assert fan.warning is None and fan.verdict == "better"
    on_mce = next(e for e in effects["mixer"].effects if e.metric == "mce")
    assert on_mce.estimate == 0.0 and "covers 0" in on_mce.warning and on_mce.verdict == "unclear"
    heads = next(e for e in effects["num_heads"].effects if e.metric == "mce")
    assert heads.estimate == pytest.approx(-2.0) and heads.verdict == "better"  # lower mCE is better
    # TAP differs from its baseline in tap_blocks too, which only exists under TAP: still matched.
    tap = next(e for e in effects["tap"].effects if e.metric == "clean_accuracy")
    assert tap.matched and tap.pairs == 4 and tap.estimate == pytest.approx(0.02)
    assert effects["tap_blocks"].levels == {"all": 2, "last_half": 2}


def test_an_unmatched_noisy_effect_is_found_and_the_bootstrap_is_seeded():
    rng = np.random.default_rng(1)
    records = []
    for i in range(30):  # a continuous lr per trial: no two trials share their other values
        mixer = "fan" if i % 2 else "mlp"
        accuracy = 0.7 + 0.05 * (mixer == "fan") + rng.normal(0, 0.01)
        records.append(record(f"t{i:02d}", {"mixer": mixer, "lr": float(rng.uniform(1e-4, 1e-2))}, accuracy))
    first = effects_of(records, [MIXER, LR])
    fan = next(e for e in first["mixer"].effects if e.metric == "clean_accuracy")
    assert not fan.matched and (fan.n_level, fan.n_baseline) == (15, 15)
    assert fan.low < 0.05 < fan.high and fan.low > 0 and fan.warning is None
    values = {r.trial_id: r.final["clean_accuracy"] for r in records}
    truth = np.mean([values[r.trial_id] for r in records if r.params["mixer"] == "fan"]) - np.mean(
        [values[r.trial_id] for r in records if r.params["mixer"] == "mlp"])
    assert fan.estimate == pytest.approx(truth)
    again = next(e for e in effects_of(records, [MIXER, LR])["mixer"].effects if e.metric == "clean_accuracy")
    assert (again.low, again.high) == (fan.low, fan.high)
    # 30 distinct learning rates: the upper half against the lower half (split at the median).
    lr = first["lr"]
    assert lr.baseline.startswith("lower half") and sum(lr.levels.values()) == 30 and len(lr.levels) == 2


def test_too_few_trials_say_so():
    records = [record("a", {"mixer": "mlp"}, 0.70), record("b", {"mixer": "mlp"}, 0.71),
               record("c", {"mixer": "fan"}, 0.80), record("d", {"mixer": "fan"}, 0.81)]
    fan = effects_of(records, [MIXER])["mixer"].effects[0]
    assert fan.estimate == pytest.approx(0.10) and fan.n_level == 2 < MIN_TRIALS
    assert fan.warning.startswith("too few trials to conclude") and not fan.conclusive
    single = effects_of(records[:3], [MIXER])["mixer"].effects[0]
    assert single.low is None and single.high is None and "too few" in single.warning


def test_only_full_budget_trials_count_and_a_single_level_is_noted():
    records = factorial()
    records += [record("stopped", {"mixer": "fan", "num_heads": 2, "tap": False}, 0.99, status="stopped", full_budget=False),
                record("failed", {"mixer": "fan", "num_heads": 2, "tap": False}, 0.99, status="failed")]
    effects = effects_of(records, [MIXER, HEADS, TAP, Param("depth", "model.depth", "int", low=1, high=3)])
    assert effects["mixer"].levels == {"mlp": 4, "fan": 4}
    assert effects["depth"].note == "no full-budget trial used it"
    for r in records:
        r.params["depth"] = 2
    assert "only one level" in effects_of(records, [HEADS, Param("depth", "model.depth", "int", low=1, high=3)])["depth"].note


def test_hypervolume_steps_use_the_trackers_history_or_recompute_it_in_finish_order():
    records = factorial()
    order = [r.trial_id for r in reversed(records)]
    steps, source, ref = hypervolume_steps(records, OBJECTIVES, order)
    assert source == "recomputed" and [s.trial_id for s in steps] == order
    values = [[r.final["clean_accuracy"], r.final["mce"]] for r in reversed(records)]
    assert ref == default_reference(values, ["max", "min"])
    assert [s.hypervolume for s in steps] == [hypervolume(values[:n], ["max", "min"], ref) for n in range(1, 9)]
    history = [[s.hypervolume, s.front_size] for s in steps]
    tracked, source, _ = hypervolume_steps(records, OBJECTIVES, order, history, ref)
    assert source == "tracker" and tracked == steps


def test_the_error_grid_holds_the_records_errors():
    a = record("a", {}, 0.9, final={"error/fog/1": 10.0, "error/fog/3": 30.0, "error/gaussian_noise/1": 12.0,
                                    "ce/fog": 20.0})
    b = record("b", {}, 0.8, final={"error/fog/1": 11.0, "error/fog/3": 31.0})
    grid = error_grid([a, b])
    assert (grid.corruptions, grid.severities) == (["fog", "gaussian_noise"], [1, 3])
    assert grid.errors[0] == [[10.0, 30.0], [12.0, None]] and grid.errors[1][1] == [None, None]
    assert grid.flat()[0] == [10.0, 30.0, 12.0, None]
    assert grid.by_corruption() == [[20.0, 12.0], [21.0, None]]


# ---- search report on a scripted run folder ----------------------------------------------------------
SPACE = """\
name: scripted
model:
  mixer: {choice: [mlp, fan]}
  num_heads: {choice: [2, 4]}
  tap: {choice: [false, true]}
  tap_blocks: {choice: [all, last_half]}
train: {epochs: 1}
eval: {corruptions: [fog, gaussian_noise], severities: [1, 3]}
"""


@pytest.fixture
def scripted(tmp_path):
    folder = tmp_path / "runs" / "scripted"
    folder.mkdir(parents=True)
    (folder / "space.yaml").write_text(SPACE)
    for r in factorial():
        r.final.update({"error/fog/1": 10 + r.final["mce"] / 10, "error/fog/3": 30.0, "error/gaussian_noise/1": 12.0,
                        "error/gaussian_noise/3": 40.0})
        r.save(folder)
    return folder


def confirmation_of(records: list[TrialRecord], members: list[str]) -> Confirmation:
    by_id = {r.trial_id: r for r in records}

    def seeds(tid: str, shift: float) -> tuple[SeedResult, ...]:
        r = by_id[tid]
        return tuple(SeedResult(s, f"{tid}_s{s}", (r.final["clean_accuracy"] + shift + d, r.final["mce"] - d))
                     for s, d in ((11, -0.01), (12, 0.01)))

    # The first member keeps its values, the others lose 0.2 accuracy: only the first survives.
    return Confirmation(tuple(OBJECTIVES), (11, 12), tuple(
        ConfirmedMember(t, dict(by_id[t].params), (by_id[t].final["clean_accuracy"], by_id[t].final["mce"]),
                        seeds(t, 0.0 if i == 0 else -0.2))
        for i, t in enumerate(members)))


def test_search_report_on_a_scripted_folder_without_mlflow(scripted, capsys):
    records = load_records(scripted)
    study = build_study(scripted, load_space(scripted / "space.yaml"), records)
    front = [p.trial_id for p in study.front]
    confirmation_of(records, front).save(scripted)
    assert main(["report", str(scripted), "--output", str(scripted / "out" / "page.html")]) == 0
    out, err = capsys.readouterr()
    page = Path(out.splitlines()[0])
    assert page == (scripted / "out" / "page.html").resolve() and page.is_file()
    assert err.strip().splitlines() == [f"not logged to MLflow: {scripted} has no tracking state (the search was never tracked)"]
    text = page.read_text()
    assert 'id="trial-count">8<' in text and 'id="corruption-table">cifar10<' in text
    assert re.search(r"<script\s[^>]*src=", text) is None and "plotly.js" in text  # inlined: opens offline
    assert 'id="confirmation-table"' in text and ">yes</td>" in text and (">no</td>" in text) == (len(front) > 1)
    assert "head_diversity</b>: not measured in this search" in text
    fan = re.search(r'<td class=num data-param="mixer" data-level="fan" data-metric="clean_accuracy" '
                    r'data-value="([^"]+)">\+0\.05</td>(.*?)</tr>', text)
    assert fan and float(fan[1]) == pytest.approx(0.05) and "matched (4 groups)" in fan[2] and ">better<" in fan[2]
    survivors = read_confirmation(scripted).survivors()
    assert survivors == [front[0]]


def test_an_unreachable_mlflow_still_gives_the_page_and_one_line(scripted, capsys):
    from tracking_support import free_port

    from search.tracking.state import TrackingState

    TrackingState(search_id="s1").save(scripted)
    (scripted / "report.html").write_text("an older report")
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert main(["report", str(scripted), "--tracking-uri", uri]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [str((scripted / "report.html").resolve())]
    assert 'id="trial-count">8<' in (scripted / "report.html").read_text()
    [line] = err.strip().splitlines()
    assert line.startswith(f"not logged to MLflow: {uri} failed (") and line.endswith(
        f"the page is written; run `search report {scripted}` again when MLflow is back")


def test_search_report_rejects_what_is_not_a_search(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "no_such_space"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "search report: error: no_such_space: not a run folder of a search, nor a space name under runs/"
    (tmp_path / "runs" / "broken" / "trials").mkdir(parents=True)
    (tmp_path / "runs" / "broken" / "space.yaml").write_text(SPACE)
    (tmp_path / "runs" / "broken" / "trials" / "x.json").write_text(json.dumps({"trial_id": "x", "colour": 1}))
    assert main(["report", "broken"]) == 2
    assert "unknown TrialRecord keys ['colour']" in capsys.readouterr().err
    (tmp_path / "runs" / "broken" / "trials" / "x.json").unlink()
    (tmp_path / "file").write_text("")
    assert main(["report", "broken", "--output", str(tmp_path / "file" / "page.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"search report: error: {tmp_path / 'file' / 'page.html'}: cannot write the report there (")
    assert err.endswith("); pass --output PATH") and "Traceback" not in err


# ---- a real search, its report logged to MLflow and opened in Chromium ------------------------------------
TINY = tiny_space("reported", train_subset=160, test_subset=48, eval_subset=16, num_trials=4, seed=5)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _chromium() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Chromium is missing: `apt-get install -y chromium` (see the README's test set-up)")
    return path


@pytest.mark.slow
def test_search_report_of_a_real_search_renders_in_chromium_with_the_records_numbers(tmp_path, capsys):
    from playwright.sync_api import sync_playwright
    from search_support import run_tiny_search

    from search.tracking.store import make_client

    space, result = run_tiny_search(tmp_path, "reported", TINY)
    folder = result.run_folder
    records = load_records(folder)
    objectives = [(m, d) for m, d in space.objectives]
    study = build_study(folder, space, records)
    front = {p.trial_id: p for p in study.front}
    assert front
    confirmation = confirmation_of(records, list(front))  # as search confirm would leave it
    confirmation.save(folder)
    capsys.readouterr()
    assert main(["report", str(folder)]) == 0
    out = capsys.readouterr().out.splitlines()
    page = Path(out[0])
    assert page == (folder / "report.html").resolve()
    client = make_client(f"sqlite:///{folder / 'mlflow.db'}")
    parent = next(r for r in client.search_runs([client.get_experiment_by_name("reported").experiment_id])
                  if r.data.tags.get("search.role") == "parent")
    assert out[1] == f"logged to MLflow: parent run {parent.info.run_id}, artifact report/report.html"
    assert [a.path for a in client.list_artifacts(parent.info.run_id, "report")] == ["report/report.html"]

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 900})
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("request", lambda r: errors.append(f"fetched {r.url}") if not r.url.startswith(("file:", "data:")) else None)
            tab.goto(page.as_uri())
            tab.wait_for_function("document.querySelectorAll('.plotly-graph-div .main-svg').length >= 5", timeout=30_000)
            graphs = tab.evaluate("[...document.querySelectorAll('.plotly-graph-div')].map(d => d.id)")
            assert {"fig-front", "fig-hypervolume", "fig-effects-0", "fig-errors", "fig-errors-by-corruption"} <= set(graphs)
            count = tab.inner_text("#trial-count")
            finished = tab.inner_text("#finished-count")
            shown = tab.evaluate("""[...document.querySelectorAll('#front-table td[data-metric]')]
                .map(td => [td.dataset.trial, td.dataset.metric, td.dataset.value, td.innerText])""")
            members = tab.evaluate("document.getElementById('fig-errors').data[0].y")
            columns = tab.evaluate("document.getElementById('fig-errors').data[0].x")
            cell = tab.evaluate("document.getElementById('fig-errors').data[0].z[0][1]")
            front_trace = tab.evaluate("document.getElementById('fig-front').data.find(t => t.name === 'Pareto front').x")
            survives = tab.evaluate("""[...document.querySelectorAll('#confirmation-table tbody tr')]
                .map(tr => [tr.cells[0].innerText, tr.cells[1].innerText])""")
            tab.screenshot(path=str(tmp_path / "report.png"), full_page=False)
        finally:
            browser.close()
    assert errors == []
    assert int(count) == len(records) == 4 and int(finished) == sum(r.status == "finished" for r in records)
    by_id = {r.trial_id: r for r in records}
    assert {t for t, *_ in shown} == set(front) and len(shown) == len(front) * len(objectives)
    for trial, metric, value, text in shown:
        assert float(value) == by_id[trial].final[metric] and text == f"{by_id[trial].final[metric]:.4g}"
    assert sorted(front_trace) == sorted(by_id[t].final[objectives[0][0]] for t in front)
    assert survives == [[m.trial_id, "yes" if m.trial_id in confirmation.survivors() else "no"]
                        for m in confirmation.members]
    corruption, severity = columns[1].rsplit(" s", 1)
    assert math.isclose(cell, by_id[members[0]].final[f"error/{corruption}/{severity}"])
