"""What one page change costs the browser and the server, page by page, with one student alone.

    python -m benchmarks.page_cost                  # every inspection page, 8 random changes each
    python -m benchmarks.page_cost --actions 4 --pages heatmaps attention_steps

The load test (`benchmarks/load/`) shows where a class's CPU goes in total; this shows which page
spends it. One server, one headless Chromium, one browser context, nothing else running on purpose.
For every change (the same random widget changes as the load test, seeded) it records:

- latency: the input event to the server's `script_finished`, in the browser (as in the load test);
- render: from the input event until the page's main thread has been idle for `--settle` seconds
  (so every chart is drawn), minus that idle tail;
- main thread: Chromium's own `TaskDuration` of the page (DevTools Performance.getMetrics): the wall
  time of the page's JavaScript, style, layout and paint tasks, iframes of the same origin included;
  it grows when other processes take the cores;
- main thread CPU: user + system time of the renderers' main threads (/proc/PID/task/PID), the same
  work counted in CPU time, which other processes do not inflate;
- Chromium CPU: user + system time of this run's Chromium processes (/proc), GPU and network included;
- server CPU: the same for the `streamlit run` process.

Medians per page; the machine is shared, so compare pages and commits with each other in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from .load import (
    CHROMIUM_ARGS,
    PAGES,
    ROOT,
    Run,
    Student,
    _descendants,
    _proc_tree,
    chromium_executable,
    free_port,
    start_server,
    stop_server,
)


def cpu_seconds(pids: set[int], main_thread_only: bool = False) -> float:
    """User + system seconds of the processes (or of their main threads only)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/task/{pid}/stat" if main_thread_only else f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            continue
    return total


def is_renderer(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"--type=renderer" in f.read()
    except OSError:
        return False


class Meter:
    """CPU seconds of the server's processes, of this run's Chromium and of its renderers' main threads."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid

    def read(self) -> tuple[float, float, float]:
        tree = _proc_tree()
        server = _descendants(self.server_pid, tree)
        # Only this run's browser (a child of Playwright's driver, our child): other Chromiums may share the machine.
        chromium = {pid for pid in _descendants(os.getpid(), tree) - server if tree[pid][1].startswith("chrom")}
        renderers = {pid for pid in chromium if is_renderer(pid)}
        return cpu_seconds(server), cpu_seconds(chromium), cpu_seconds(renderers, main_thread_only=True)


async def task_duration(cdp) -> float:
    metrics = (await cdp.send("Performance.getMetrics"))["metrics"]
    return next(m["value"] for m in metrics if m["name"] == "TaskDuration")


async def settle(cdp, idle_s: float, timeout_s: float = 60.0, quiet_work_s: float = 0.02) -> float:
    """Wait until the page did less than quiet_work_s of main-thread work in the last idle_s seconds.

    Returns when that quiet window began (monotonic seconds). Reading the metrics itself costs the page
    about 0.3 ms per poll, and Streamlit has a few timers, so "no work at all" never happens.
    """
    samples = [(time.monotonic(), await task_duration(cdp))]
    deadline = samples[0][0] + timeout_s
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        now, value = time.monotonic(), await task_duration(cdp)
        samples.append((now, value))
        window = [s for s in samples if s[0] >= now - idle_s]
        if now - samples[0][0] >= idle_s and value - window[0][1] < quiet_work_s:
            return window[0][0]
    return time.monotonic()


async def measure(args: argparse.Namespace) -> list[dict]:
    from playwright.async_api import async_playwright

    port = free_port()
    env = os.environ | {"TP_USER_MODELS": tempfile.mkdtemp(prefix="tp-page-cost-")}
    log = Path(tempfile.mkdtemp(prefix="tp-page-cost-log-")) / "server.log"
    server = start_server(port, env, log, session_ttl=120)
    rows: list[dict] = []
    try:
        meter = Meter(server.pid)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium_executable(0), args=CHROMIUM_ARGS)
            run = Run(args=vars(args))
            student = Student(0, browser, f"http://127.0.0.1:{port}", run, args)
            print("opening the app", file=sys.stderr, flush=True)
            await student.open()
            cdp = await student.context.new_cdp_session(student.page)
            await cdp.send("Performance.enable")
            await settle(cdp, args.settle)
            for page_name in args.pages:
                for index in range(args.actions + 1):  # the first is the navigation itself
                    server_0, chromium_0, renderer_0 = meter.read()
                    main_0, t0 = await task_duration(cdp), time.monotonic()
                    n_before = len(run.actions)
                    print(f"{page_name}: change {index}", file=sys.stderr, flush=True)
                    if index == 0:
                        await student.navigate(page_name)
                    else:
                        await student.act()
                    last_work = await settle(cdp, args.settle)
                    server_1, chromium_1, renderer_1 = meter.read()
                    action = run.actions[n_before] if len(run.actions) > n_before else None
                    rows.append({
                        "page": page_name, "kind": action.kind if action else "none",
                        "latency_s": action.latency_s if action else None,
                        "render_s": last_work - t0,
                        "main_thread_s": await task_duration(cdp) - main_0,
                        "main_thread_cpu_s": renderer_1 - renderer_0,
                        "chromium_cpu_s": chromium_1 - chromium_0,
                        "server_cpu_s": server_1 - server_0,
                    })
            problems = [p for p in run.problems if p.kind != "driver"]
            if problems:
                print(f"problems: {problems}")
            await browser.close()
    finally:
        stop_server(server)
    return rows


COLUMNS = ["latency_s", "render_s", "main_thread_s", "main_thread_cpu_s", "chromium_cpu_s", "server_cpu_s"]


def median_row(key: str, group: list[dict]) -> str:
    """One table row: the medians of a group of changes."""
    cells = []
    for column in COLUMNS:
        values = [r[column] for r in group if r[column] is not None]
        cells.append(f"{statistics.median(values):.2f}" if values else "-")
    return f"| {key} | {len(group)} | " + " | ".join(cells) + " |"


def table(rows: list[dict]) -> str:
    """Medians per page (its navigation apart), per page and kind of change, and over all changes."""
    head = "| page | changes | " + " | ".join(c.removesuffix("_s").replace("_", " ") + " (s)" for c in COLUMNS) + " |"
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["page"] + (" (navigate)" if row["kind"] == "navigate" else ""), []).append(row)
    changes = [r for r in rows if r["kind"] != "navigate"]
    for row in changes:
        groups.setdefault(f"{row['page']}: {row['kind']}", []).append(row)
    # The layer and head menus are the changes a student makes most on an inspection page.
    groups["layer or head changes"] = [r for r in changes if r["kind"] in ("select:Layer", "select:Head")]
    groups["all changes"] = changes
    lines = [head, "| --- | ---: |" + " ---: |" * len(COLUMNS)]
    return "\n".join(lines + [median_row(key, group) for key, group in groups.items() if group])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pages", nargs="+", default=list(PAGES), choices=list(PAGES))
    p.add_argument("--actions", type=int, default=8, help="random changes per page after opening it (default 8)")
    p.add_argument("--settle", type=float, default=1.0, help="idle seconds that mean the page is drawn")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--action-timeout", type=float, default=60.0)
    p.add_argument("--think", type=float, nargs=2, default=(0.0, 0.0), help=argparse.SUPPRESS)
    args = p.parse_args()
    os.chdir(ROOT)
    rows = asyncio.run(measure(args))
    print(table(rows))


if __name__ == "__main__":
    main()
