"""The causal-mask lesson in Chromium, network cut off: click the grid's cells, press Check, read the feedback.

AppTest ticks checkboxes without a browser; this checks that a student's clicks do the same. The server
comes from test_app_browser.py's module-scoped `app_url` fixture. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from . import test_app_browser as base
from .test_app_browser import assert_clean_app, open_app, screenshot

app_server, app_url, page = base.app_server, base.app_url, base.page

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WAIT_MS = 120_000  # a shared, loaded machine: every wait is on a condition, with room
LINK = "/lessons?lesson=causal-mask&checkpoint=reversal-mha&text=3+1+4+1+5+9+2+6"
LABELS = ("0:3", "1:1", "2:4", "3:1", "4:5", "5:9")  # the first six tokens of the input, as the grid labels them


def cell(page, row: int, col: int):
    """The checkbox of one grid cell, found by its accessible name."""
    return page.get_by_label(f"query {LABELS[row]}, key {LABELS[col]}", exact=True)


def tick(page, cells: set[tuple[int, int]]) -> None:
    """Click each cell's box (its label: the input itself is visually hidden) and wait until the app has it."""
    for row, col in sorted(cells):
        box = cell(page, row, col)
        page.locator('[data-testid="stCheckbox"] label').filter(has=box).click()
        expect(box).to_be_checked(timeout=WAIT_MS)


def press_check(page) -> None:
    page.get_by_role("button", name="Check", exact=True).click()


@pytest.fixture
def lesson_page(app_url, page):
    open_app(page, app_url)  # a fresh server's first request is the home page (see test_app_browser.py)
    open_app(page, app_url + LINK)
    expect(cell(page, 5, 5)).to_be_visible(timeout=WAIT_MS)
    return page


def test_clicking_the_masked_cells_is_right(lesson_page, browser_log, artifacts_dir):
    page = lesson_page
    masked = {(row, col) for row in range(6) for col in range(6) if col > row}
    tick(page, masked)
    press_check(page)
    expect(page.get_by_text("Right: all 15 cells, and no others.")).to_be_visible(timeout=WAIT_MS)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=WAIT_MS)
    expect(page.get_by_role("link", name="See the mask added to the scores, step by step")).to_be_visible()
    assert not cell(page, 1, 0).is_checked()
    assert_clean_app(page, browser_log)
    screenshot(page, artifacts_dir / "lessons_causal_mask_right.png")


def test_a_wrong_set_of_cells_gets_the_hint_not_the_answer(lesson_page, browser_log, artifacts_dir):
    page = lesson_page
    tick(page, {(0, 1), (0, 2), (1, 0)})  # two hidden cells and one on the allowed side
    press_check(page)
    expect(page.get_by_text("Not yet: 1 of the cells you picked should not be picked and 13 cells are missing."))\
        .to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("Hint.", exact=False)).to_be_visible()
    assert page.get_by_text("The answer", exact=True).count() == 0
    assert page.locator(".js-plotly-plot").count() == 0  # no evidence before a right answer or the answer
    assert_clean_app(page, browser_log)
    screenshot(page, artifacts_dir / "lessons_causal_mask_wrong.png")
