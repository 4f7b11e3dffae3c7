"""Retake the README's screenshots: docs/screenshots/{attention_steps,heatmaps,presentation}.png.

    python scripts/screenshots.py [--out DIR]

Starts `streamlit run app.py` on a free local port the way the browser tests do (no user models, so
only the shipped checkpoints), opens each view in Debian's Chromium at 1400 px and waits until its
charts have stopped changing before taking the picture. Look at each image before committing it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright

from tests.browser.conftest import CHROMIUM_ARGS, CHROMIUM_PATH
from tests.browser.test_app_browser import open_app, running_app
from tests.browser.test_layout_800_browser import SETTLED_JS

WIDTH = 1400
CHECKPOINT = "reversal-mha"
# file name -> (page and query, viewport height, the heading scrolled to the top or None for the page top)
SHOTS = {
    "attention_steps.png": (f"attention_steps?checkpoint={CHECKPOINT}", 1250, "3. Scores"),
    "heatmaps.png": (f"heatmaps?checkpoint={CHECKPOINT}", 1250, "bertviz: the same attention as lines"),
    "presentation.png": (f"heatmaps?checkpoint={CHECKPOINT}&present=true", 1100, None),
}
CHARTS = {"attention_steps": 7, "heatmaps": 2}


def take(page, base: str, query: str, height: int, heading: str | None, path: Path) -> None:
    """One screenshot of the view at `query`, WIDTH x height, once its charts have settled."""
    page.set_viewport_size({"width": WIDTH, "height": height})
    open_app(page, f"{base}/{query}", charts=CHARTS[query.split("?")[0]])
    frames = page.frame_locator('[data-testid="stIFrame"]')
    for index in range(page.locator('[data-testid="stIFrame"]').count()):  # bertviz draws after its scripts load
        frames.nth(index).locator("#vis svg text").first.wait_for(state="attached", timeout=60_000)
    if heading is not None:
        page.get_by_role("heading", name=heading).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_function(SETTLED_JS, timeout=90_000, polling=200)
    page.screenshot(path=str(path))
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="folder for the PNG files")
    out = parser.parse_args().out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        env = os.environ | {"TP_USER_MODELS": scratch}
        with running_app(Path(scratch) / "server.log", env) as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page()
            open_app(page, f"{base}/")  # a fresh server's first session starts with Streamlit's sidebar width
            for name, (query, height, heading) in SHOTS.items():
                take(page, base, query, height, heading, out / name)
            browser.close()


if __name__ == "__main__":
    main()
