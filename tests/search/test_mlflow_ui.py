"""The MLflow UI, served by a real ``mlflow server``, opened in headless Chromium: a logged search shows
its parent run, the nested trial runs under it, and the Pareto plot among the parent's artifacts.

Needs Debian's ``chromium`` (the README's test set-up installs it) and the ``playwright`` Python
package (the ``dev`` extra); Playwright drives the system Chromium, nothing is downloaded.
Screenshots go to the test's tmp dir (and to ``$MLFLOW_UI_SCREENSHOTS`` when set).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from tracking_support import make_record, search_runs, shared_server, write_space

from search.tracking import SearchTracker
from search.tracking.ui import runs_url

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


def _chromium() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Chromium is missing: `apt-get install -y chromium` (see the README's test set-up)")
    return path


def _save(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=False)
    if os.environ.get("MLFLOW_UI_SCREENSHOTS"):
        target = Path(os.environ["MLFLOW_UI_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / name)
    return path


def _dismiss_side_panels(page) -> None:
    """Close MLflow 3's assistant panel when the UI offers it."""
    close = page.locator('button[data-component-id="mlflow.assistant.chat_panel.close"]')
    if close.count():
        close.first.click()


def test_mlflow_ui_shows_parent_nested_trials_and_pareto_plot(tmp_path, tmp_path_factory):
    server = shared_server(tmp_path_factory.getbasetemp() / "mlflow-server")
    run_folder = tmp_path / "runs" / "ui_space"
    space = write_space(run_folder, "ui_space")
    tracker = SearchTracker(run_folder, space, server.url)
    parent_id = tracker.start()
    records = [
        make_record("trial_a", 90.0, 80.0, mixer="mlp"),
        make_record("trial_b", 85.0, 70.0, mixer="se", num_heads=4),
        make_record("trial_c", 80.0, 75.0, mixer="fan", adl_weight=0.1),
        make_record("trial_d", 70.0, 60.0, mixer="fan", num_heads=4),
    ]
    for record in records:
        record.save(run_folder)
        tracker.log_trial(record.trial_id)
    assert tracker.finish("finished")
    parents, children = search_runs(server.url, "ui_space")
    experiment_id = parents[0].info.experiment_id
    parent_name = parents[0].info.run_name

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            page.set_default_timeout(60_000)

            # The link the search prints opens a fresh browser on the runs table (MLflow 3.17 would
            # otherwise open its GenAI overview: search/tracking/ui.py), nothing clicked first.
            assert tracker.ui_hint() == f"MLflow: {runs_url(server.url, experiment_id, parent_id)}"
            page.goto(runs_url(server.url, experiment_id), wait_until="load")
            parent_link = page.locator(f'a[href*="/runs/{parent_id}"]').first
            parent_link.wait_for()
            _dismiss_side_panels(page)
            parent_link.wait_for()
            assert parent_link.inner_text().strip() == parent_name
            expand = page.locator(f'div[row-id="{parent_id}"] button[data-component-id*="runnamecellrenderer"]')
            expand.first.click()
            names = {c.data.tags["trial_id"]: c.info.run_name for c in children}
            assert names["trial_b"] == "robust_vit se 4 heads adl 0"  # named by what it is
            for child in children:
                page.locator(f'div[row-id="{child.info.run_id}"]').first.wait_for()
                assert page.get_by_text(child.info.run_name, exact=True).count() >= 1
            _save(page, tmp_path, "mlflow_ui_runs.png")

            # The front, as a user finds it: the runs tagged pareto = true (trial_c is dominated).
            search_box = page.locator('input[placeholder*="metrics.rmse"]').first
            search_box.fill("tags.pareto = 'true'")
            search_box.press("Enter")
            # The UI keeps the matching trials nested under their parent (shown for context).
            page.get_by_text(names["trial_c"], exact=True).first.wait_for(state="detached")
            if page.get_by_text(names["trial_a"], exact=True).count() == 0:
                expand.first.click()
            for trial in ("trial_a", "trial_b", "trial_d"):
                page.get_by_text(names[trial], exact=True).first.wait_for()
            assert page.get_by_text(names["trial_c"], exact=True).count() == 0
            _save(page, tmp_path, "mlflow_ui_front.png")

            # The parent's artifacts: the Pareto plot renders as an image.
            page.goto(f"{server.url}/#/experiments/{experiment_id}/runs/{parent_id}/artifacts", wait_until="load")
            page.get_by_text("pareto", exact=True).first.click()
            page.get_by_text("pareto_front.html", exact=True).first.wait_for()
            page.get_by_text("pareto_front.png", exact=True).first.click()
            image = page.locator('img[alt="pareto/pareto_front.png"]').first
            image.wait_for()
            page.wait_for_function("e => e.complete && e.naturalWidth > 0", arg=image.element_handle())
            assert image.evaluate("e => e.naturalWidth") > 400
            shot = _save(page, tmp_path, "mlflow_ui_pareto.png")
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()
