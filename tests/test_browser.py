"""The notebooks in a real browser: JupyterLab, Run All, no error, figures drawn; the explorer answers a slider.

Marked `browser`: they need Debian's Chromium (`make browser`, which `.ci/run` runs). Each notebook is staged
with small parameters (those it declares) and run from the menu, as a learner would; screenshots go to
build/browser/.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from lab import CHROMIUM_ARGS, REPO, chromium, open_notebook, run_all, shut_down_kernel, stage, start_lab
from notebook_checks import BROWSER_CHECKED, BROWSER_TEST

pytestmark = pytest.mark.browser

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
EXPLORER_NOTEBOOK = "L5_Bandwidth.ipynb"  # the notebook that shows the explorer
WIRE_NOTEBOOK = "L5c_On_the_Wire.ipynb"  # the notebook that changes this machine's network (emulated hosts)
SHOTS = REPO / "build" / "browser"
VIEWPORT = {"width": 1400, "height": 1000}


@pytest.fixture(scope="module")
def lab_root(tmp_path_factory):
    """The folder JupyterLab serves: staged notebooks under notebooks/, their out_dirs under build/."""
    return tmp_path_factory.mktemp("lab")


@pytest.fixture(scope="module")
def lab(lab_root):
    """A JupyterLab server over staged copies of every notebook; yields the URL pattern of a notebook."""
    root = lab_root
    for notebook in NOTEBOOKS:
        stage(notebook, root)
    SHOTS.mkdir(parents=True, exist_ok=True)
    server, url = start_lab(root, SHOTS / "jupyterlab.log")
    yield url
    server.terminate()
    server.wait(60)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, through Playwright."""
    from playwright.sync_api import sync_playwright

    assert chromium(), "Chromium is not installed: run `make browser` (apt-get install chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def ran(lab, browser):
    """Run a notebook once in its own page (Run All); later calls return the same page and state."""
    pages: dict[str, tuple] = {}

    def run(name: str, keep_kernel: bool = False):
        if name not in pages:
            page = browser.new_page(viewport=VIEWPORT)
            started = time.perf_counter()
            open_notebook(page, lab.format(Path(name).stem))
            state = {**run_all(page), "seconds": round(time.perf_counter() - started, 1)}
            page.screenshot(path=SHOTS / f"{Path(name).stem}.png")
            (SHOTS / f"{Path(name).stem}.json").write_text(json.dumps(state, indent=2))
            if not keep_kernel:
                shut_down_kernel(page)
            pages[name] = (page, state)
        return pages[name]

    yield run
    for page, _ in pages.values():
        page.close()


@pytest.mark.parametrize("notebook", [n.name for n in NOTEBOOKS])
def test_notebook_runs_all_in_jupyterlab(ran, notebook):
    _, state = ran(notebook, keep_kernel=notebook == EXPLORER_NOTEBOOK)
    assert state["dialogs"] == []  # nothing asked the learner a question
    if notebook != WIRE_NOTEBOOK:  # only L5c changes this machine's network (emulated hosts)
        assert state["reconnects"] == 0
    assert state["errors"] == []
    assert state["executed"] == state["cells"] > 0
    assert state["figures"] >= 1 and state["rendered"] >= state["figures"]  # every figure drawn in the page
    assert state["widget_views"] >= state["widget_outputs"]  # every widget (progress bar, explorer) drawn


@pytest.mark.parametrize("stem", sorted(BROWSER_CHECKED))
def test_out_dir_after_run_all_passes_the_headless_checks(ran, lab_root, stem):
    """The checks tests/test_notebook*.py make on a headless run, on the JupyterLab run's out_dir and text instead."""
    _, state = ran(f"{stem}.ipynb", keep_kernel=f"{stem}.ipynb" == EXPLORER_NOTEBOOK)
    assert state["errors"] == []
    _, check, _ = BROWSER_CHECKED[stem]
    check(lab_root / "build" / stem, state["text"])


assert test_out_dir_after_run_all_passes_the_headless_checks.__name__ == BROWSER_TEST  # conftest skips by this name


def wait_for_update(page, seen: int) -> int:
    """Wait until the explorer has answered once more than `seen` times; its new count."""
    page.wait_for_function("n => +document.querySelector('.fbw-updated').dataset.n > n", arg=seen, polling="raf")
    return int(page.locator(".fbw-updated").get_attribute("data-n"))


def shown_bytes(page) -> int:
    """The forecast's total bytes as the explorer shows them ('1,234 B (...)')."""
    return int(page.locator(".fbw-total").inner_text().split(" B")[0].replace(",", ""))


def test_explorer_answers_a_slider_and_measures(ran):
    from fedbandwidth.forecast import ForecastConfig, forecast

    page, _ = ran(EXPLORER_NOTEBOOK, keep_kernel=True)
    page.locator(".fbw-forecast").scroll_into_view_if_needed()
    seen, before = int(page.locator(".fbw-updated").get_attribute("data-n")), shown_bytes(page)
    plot = page.locator("img.fbw-plot").get_attribute("src")
    handle = page.locator(".fbw-supernodes .noUi-handle")
    handle.focus()
    started = time.perf_counter()
    page.keyboard.press("ArrowRight")  # supernodes + 1
    wait_for_update(page, seen)
    answered = time.perf_counter() - started
    supernodes = int(page.locator(".fbw-supernodes .widget-readout").inner_text())
    expected = forecast(ForecastConfig("pythia-14m", supernodes, 3)).get("total_bytes")
    assert shown_bytes(page) == expected != before
    assert page.locator("img.fbw-plot").get_attribute("src") != plot
    page.locator(".fbw-run").click()
    page.locator(".fbw-measured").wait_for(timeout=120_000)
    assert "equal to the forecast" in page.locator(".fbw-measured").inner_text()
    page.locator(".fbw-explorer").screenshot(path=SHOTS / "explorer.png")
    (SHOTS / "explorer_response.json").write_text(json.dumps({"slider_to_new_numbers_seconds": round(answered, 3)}))
