"""Train page: seconds from pressing Start with the defaults to "Learned in N steps", in Chromium (issue 17).

    python -m benchmarks.train_to_learned              # 3 runs, each in a fresh browser session
    python -m benchmarks.train_to_learned --runs 5 --task dates

One `streamlit run app.py` (user models in a temporary folder) and one headless Chromium
(/usr/bin/chromium, the browser tests' flags). Each run opens /train in a new browser context (a new
session: one run per session), presses Start training with the page's defaults, and records in the page
itself (performance.now(), polled every 50 ms):

- to learned: from the click to the first frame whose text holds "Learned in" (what a student sees);
- the page's own line, "Learned in N steps, S seconds" (S: the training loop's time, from the worker's
  first step: process start and torch import are outside it);
- loss chart updates: the times at which the loss chart's number of points changed, from its first
  point to "learned"; the largest gap between two of them is the "at least once a second" check.

The load average (uptime) before and after is printed with the table: the machine is shared.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.load.browser import CHROMIUM_ARGS
from benchmarks.load.server import free_port, start_server, stop_server

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
WATCH = """(() => {
  const w = window.__tr = {click: null, learned: null, changes: [], text: ''};
  document.addEventListener('click', () => { if (w.click === null) w.click = performance.now(); }, true);
  setInterval(() => {
    const plot = [...document.querySelectorAll('.js-plotly-plot')].find(p => p.layout && p.layout.title
      && String(p.layout.title.text || '').replace(/<[^>]*>/g, '').startsWith('Loss'));
    const n = plot && plot.data && plot.data[0] ? plot.data[0].x.length : -1;
    const last = w.changes[w.changes.length - 1];
    if (!last || last[1] !== n) w.changes.push([performance.now(), n]);
    if (w.learned === null && w.click !== null) {
      const main = document.querySelector('[data-testid="stMain"]');
      const m = main && main.innerText.match(/Learned in \\d+ steps, [0-9.]+ seconds\\./);
      if (m) { w.learned = performance.now(); w.text = m[0]; }
    }
  }, 50);
})()"""


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def one_run(browser, base: str, task: str, timeout_s: float, shot: Path | None = None) -> dict:
    """A fresh session: open /train, press Start with the defaults, wait for "Learned in"."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(WATCH)
    page = context.new_page()
    try:
        page.goto(f"{base}/train" + ("?tr_task=dates" if task == "dates" else ""))
        button = page.get_by_role("button", name="Start training")
        button.wait_for(timeout=120_000)
        page.wait_for_timeout(1000)  # the first script run has finished drawing
        button.click()
        page.wait_for_function("() => window.__tr.learned !== null", timeout=timeout_s * 1000, polling=200)
        w = page.evaluate("() => window.__tr")
        if shot is not None:  # the whole page once it has settled (Streamlit scrolls its main block)
            page.wait_for_timeout(2000)
            height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
            page.set_viewport_size({"width": 1400, "height": min(max(height, 800), 9000)})
            page.wait_for_timeout(800)
            page.screenshot(path=str(shot))
    finally:
        context.close()
    updates = [t for t, n in w["changes"] if n > 0 and t <= w["learned"]]
    gaps = [b - a for a, b in itertools.pairwise(updates)]
    return {"seconds": (w["learned"] - w["click"]) / 1000, "text": w["text"],
            "first_chart": (updates[0] - w["click"]) / 1000 if updates else float("nan"),
            "updates": len(updates), "max_gap": max(gaps) / 1000 if gaps else float("nan"),
            "median_gap": statistics.median(gaps) / 1000 if gaps else float("nan")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--task", choices=("reversal", "dates"), default="reversal")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for 'learned' per run")
    parser.add_argument("--screenshot", type=Path, help="a PNG of the last run's page once it has learned")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        env = os.environ | {"TP_USER_MODELS": folder}
        server = start_server(port, env, Path(folder) / "server.log", session_ttl=60)
        try:
            before = load_average()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                rows = [one_run(browser, f"http://127.0.0.1:{port}", args.task, args.timeout,
                                args.screenshot if i == args.runs - 1 else None) for i in range(args.runs)]
                browser.close()
            after = load_average()
        finally:
            stop_server(server)
    print(f"Train page, task {args.task}, defaults, {os.cpu_count()} CPUs; load average before {before}, "
          f"after {after} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n")
    print("| run | Start to 'learned' (s) | page says | first loss chart (s) | chart updates | "
          "largest gap (s) | median gap (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for i, r in enumerate(rows, 1):
        print(f"| {i} | {r['seconds']:.1f} | {r['text']} | {r['first_chart']:.1f} | {r['updates']} | "
              f"{r['max_gap']:.2f} | {r['median_gap']:.2f} |")
    print(f"\nmedian Start to 'learned': {statistics.median(r['seconds'] for r in rows):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
