"""App latency: server time to render each page, and to re-render after a head or layer change.

    python -m benchmarks.app_latency            # every page x every shipped checkpoint
    python -m benchmarks.app_latency --quick    # one checkpoint, two pages (a smoke run)

What is timed is the server's work, the script run that produces a page, through Streamlit's
AppTest (the same script run a browser's request triggers, without the browser's drawing):

* import: a fresh `python3` importing torch, streamlit and plotly (median of several runs):
  the floor any Streamlit app on this stack pays before its first page.
* home ready: a fresh `python3` that imports AppTest and runs app.py once on the home page
  (sidebar: checkpoint list, default model loaded from disk, model card; the page itself).
  Target: within 1.3x the import time.
* first render: in one warm process, opening each page for each shipped checkpoint
  (the checkpoint load and the trace included, as the first student to open it would pay).
* head / layer change: the re-run after changing the head, then the layer, on the pages
  that have them. Target: under 0.3 s.

Each fresh-process timing is repeated and the median shown; in-process timings are the
median of `--repeats` changes. Wall-clock on a shared machine: compare within one run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import parser, print_header, print_table

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
IMPORT_TARGET, CHANGE_TARGET = 1.3, 0.3
PAGES_WITH_HEADS = ("pages/heatmaps.py", "pages/attention_steps.py")
PAGES = ("pages/home.py", "pages/embeddings.py", "pages/positional.py", "pages/attention_steps.py",
         "pages/heatmaps.py", "pages/compare_attention.py", "pages/kv_cache.py", "pages/train.py")

# Each probe prints its wall-clock and CPU seconds; --clock picks which the tables use.
IMPORT_PROBE = """
import time
t, c = time.perf_counter(), time.process_time()
import torch, streamlit, plotly  # noqa: F401
print(time.perf_counter() - t, time.process_time() - c)
"""
# Run app.py's home page once in a fresh process, counted from before the first import.
HOME_PROBE = """
import time
t, c = time.perf_counter(), time.process_time()
from streamlit.testing.v1 import AppTest
from streamlit.runtime.pages_manager import PagesManager
PagesManager.uses_pages_directory = False  # as a warm server (see app_lib.state.ensure_entrypoint)
at = AppTest.from_file({app!r}, default_timeout=120)
at.run()
assert not at.exception, [e.value for e in at.exception]
print(time.perf_counter() - t, time.process_time() - c)
"""


# The same, for a one-line Streamlit app that imports the stack: Streamlit's own start-up cost
# (its runtime scans every installed package for components) without anything of ours.
EMPTY_APP = "import torch, plotly, streamlit as st  # noqa: F401\nst.write('empty')\n"


def fresh_process_seconds(code: str, repeats: int, clock: str) -> list[float]:
    """Seconds (wall or cpu) reported by `code` on its last stdout line, in `repeats` fresh interpreters."""
    times = []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        if done.returncode:
            raise RuntimeError(f"probe failed:\n{done.stderr[-2000:]}")
        wall, cpu = map(float, done.stdout.strip().splitlines()[-1].split())
        times.append(cpu if clock == "cpu" else wall)
    return times


def _app_test():
    """A warm AppTest on app.py with Streamlit's pages-folder mode off (as a warm server)."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import AppTest

    original = PagesManager.__init__

    def init(self, *args, **kwargs):  # AppTest resets the mode on every run; keep it off
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init
    return AppTest.from_file(APP, default_timeout=120)


CLOCK = time.perf_counter  # main() sets time.process_time for --clock cpu


def timed_run(at, action=None) -> float:
    """Seconds for one script run after `action` (a widget change or a page switch)."""
    start = CLOCK()
    (action(at) if action else at).run()
    seconds = CLOCK() - start
    if at.exception:
        raise RuntimeError(f"the page raised: {[e.value for e in at.exception]}")
    return seconds


def page_latencies(checkpoints: list[str], pages: tuple[str, ...], repeats: int) -> list[list[object]]:
    """First render of each page per checkpoint, then head and layer changes where the page has them."""
    rows = []
    for name in checkpoints:
        at = _app_test()
        at.query_params["checkpoint"] = name
        at.run()  # the sidebar loads the checkpoint on home: a page's first render below is its own work
        for page in pages:
            first = timed_run(at, lambda a: a.switch_page(page))
            head_times, layer_times = [], []
            if page in PAGES_WITH_HEADS:
                for i in range(repeats):
                    head_box, layer_box = at.selectbox(key="head"), at.selectbox(key="layer")
                    next_head = head_box.options[(i + 1) % len(head_box.options)]
                    head_times.append(timed_run(at, lambda a: a.selectbox(key="head").set_value(int(next_head))))
                    next_layer = layer_box.options[(i + 1) % len(layer_box.options)]
                    layer_times.append(timed_run(at, lambda a: a.selectbox(key="layer").set_value(int(next_layer))))
            rows.append([name, page.removeprefix("pages/").removesuffix(".py"), f"{first:.2f}",
                         _median_or_dash(head_times), _median_or_dash(layer_times),
                         _verdict(head_times + layer_times)])
    return rows


def _median_or_dash(times: list[float]) -> str:
    return f"{statistics.median(times):.3f}" if times else "-"


def _verdict(times: list[float]) -> str:
    if not times:
        return "-"
    return "met" if max(statistics.median(times[0::2]), statistics.median(times[1::2])) < CHANGE_TARGET else "missed"


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__.split("\n\n")[0])
    cli.add_argument("--repeats", type=int, default=5, help="fresh processes per probe and changes per page")
    cli.add_argument("--json", help="also write the numbers to this JSON file")
    args = cli.parse_args(argv)
    global CLOCK
    print_header("App latency: page renders and re-renders (server time, AppTest)")
    print(f"clock: {args.clock} time" + (" (process CPU time, all threads)" if args.clock == "cpu" else ""))
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    from app_lib.checkpoints import list_checkpoints

    shipped = [e.name for e in list_checkpoints() if e.source == "shipped" and not e.error]
    checkpoints = shipped[:1] if args.quick else shipped
    pages = ("pages/home.py", "pages/heatmaps.py") if args.quick else PAGES
    repeats = 2 if args.quick else args.repeats

    print("  timing imports and the home page in fresh processes...", file=sys.stderr, flush=True)
    imports = fresh_process_seconds(IMPORT_PROBE, repeats, args.clock)
    home = fresh_process_seconds(HOME_PROBE.format(app=APP), repeats, args.clock)
    with tempfile.TemporaryDirectory() as folder:
        empty_app = Path(folder) / "empty_app.py"
        empty_app.write_text(EMPTY_APP)
        empty = fresh_process_seconds(HOME_PROBE.format(app=str(empty_app)), repeats, args.clock)
    ratio = statistics.median(home) / statistics.median(imports)
    empty_ratio = statistics.median(empty) / statistics.median(imports)
    print_table(
        f"fresh process (target: home ready within {IMPORT_TARGET}x the import time)",
        ["what", "median s", "min s", "max s", "vs import", "verdict"],
        [["import torch, streamlit, plotly", f"{statistics.median(imports):.2f}", f"{min(imports):.2f}",
          f"{max(imports):.2f}", "1.00x", ""],
         ["an empty Streamlit app ready (imports included)", f"{statistics.median(empty):.2f}", f"{min(empty):.2f}",
          f"{max(empty):.2f}", f"{empty_ratio:.2f}x", "(Streamlit's own start)"],
         ["home page ready (imports included)", f"{statistics.median(home):.2f}", f"{min(home):.2f}",
          f"{max(home):.2f}", f"{ratio:.2f}x", "met" if ratio <= IMPORT_TARGET else "missed"]],
    )
    print("  timing pages per checkpoint...", file=sys.stderr, flush=True)
    rows = page_latencies(checkpoints, pages, repeats)
    print_table(
        f"warm process, seconds (target: a head or layer change re-renders in < {CHANGE_TARGET} s)",
        ["checkpoint", "page", "first render", "head change", "layer change", "verdict"],
        rows,
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"imports": imports, "empty": empty, "home": home, "pages": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
