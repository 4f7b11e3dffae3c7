"""The command line: `python -m benchmarks.load` (see the package's docstring for what it measures)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from .driver import drive
from .records import Run
from .report import build_report, markdown, read_run_log, server_run_summary
from .sampler import Sampler
from .server import free_port, start_server, stop_server


def parse(argv: list[str] | None) -> argparse.Namespace:
    from benchmarks import load  # the package's docstring describes the command

    p = argparse.ArgumentParser(prog="python -m benchmarks.load", description=load.__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=20, help="browser contexts (students), default 20")
    p.add_argument("--rounds", type=int, default=3, help="rounds over the inspection pages (default 3)")
    p.add_argument("--duration", type=float, help="instead of --rounds: keep going for this many seconds")
    p.add_argument("--actions", type=int, default=3, help="random changes per page visit (default 3)")
    p.add_argument("--think", type=float, nargs=2, default=(2.0, 5.0), metavar=("MIN", "MAX"),
                   help="seconds of thinking before each action, uniform (default 2 5)")
    p.add_argument("--stagger", type=float, default=1.0, help="seconds between session starts (default 1)")
    p.add_argument("--training-runs", type=int, default=3, help="sessions that start a training run (default 3)")
    p.add_argument("--train-steps", type=int, default=300, help="steps of each training run (default 300)")
    p.add_argument("--max-runs", type=int, help="$TP_MAX_TRAINING_RUNS for the server (default: the app's)")
    p.add_argument("--heartbeat", type=float, default=15.0, help="$TP_TRAINING_HEARTBEAT_S (default 15)")
    p.add_argument("--leave-after", type=float, default=5.0,
                   help="seconds into its run the first training session closes its tab")
    p.add_argument("--session-ttl", type=float, default=120.0,
                   help="server.disconnectedSessionTTL (Streamlit's default 120); waited for after the tabs close")
    p.add_argument("--action-timeout", type=float, default=60.0, help="seconds a rerun may take (default 60)")
    p.add_argument("--train-timeout", type=float, default=600.0, help="seconds a training run may take")
    p.add_argument("--port", type=int, help="server port (default: a free one)")
    p.add_argument("--headed", action="store_true", help="show the browser (needs a display)")
    p.add_argument("--browser-nice", type=int, default=0,
                   help="run Chromium under `nice -n N` so the server gets the CPU first, as if the "
                        "students' browsers ran on their own machines (default 0: equal priority)")
    p.add_argument("--server-cpus", type=cpu_list, metavar="LIST",
                   help="CPUs the server may run on, e.g. 0 (default: all)")
    p.add_argument("--browser-cpus", type=cpu_list, metavar="LIST",
                   help="CPUs Chromium and this driver may run on, e.g. 1 (default: all). With --server-cpus "
                        "0 the server has a core the 20 browsers cannot take, as on a class's server, where "
                        "the browsers run on the students' machines")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 2 sessions, 1 round, 1 action per page, 1 training run of 20 steps")
    p.add_argument("--out", type=Path, help="write the report: .json as JSON, anything else as Markdown")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.sessions, args.rounds, args.actions, args.duration = 2, 1, 1, None
        args.think, args.stagger, args.training_runs, args.train_steps = (0.1, 0.3), 0.5, 1, 10
        args.session_ttl = 3.0
    return args


def cpu_list(text: str) -> set[int]:
    """"0", "0,1" or "0-1" as a set of CPU numbers."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from app_lib.training_queue import DEFAULT_MAX_RUNS

    max_runs = args.max_runs or DEFAULT_MAX_RUNS
    run = Run(args=vars(args) | {"think": list(args.think), "out": str(args.out),
                                 "server_cpus": sorted(args.server_cpus or []),
                                 "browser_cpus": sorted(args.browser_cpus or [])})
    port = args.port or free_port()
    with tempfile.TemporaryDirectory(prefix="tp-load-") as tmp:
        run_log = Path(tmp) / "runs.jsonl"
        # MALLOC_ARENA_MAX as scripts/serve.sh sets it (unless the caller's environment says otherwise).
        env = {"MALLOC_ARENA_MAX": "2"} | os.environ | {"TP_USER_MODELS": str(Path(tmp) / "user_models"),
                                                        "TP_TRAINING_HEARTBEAT_S": str(args.heartbeat),
                                                        "TP_RUN_LOG": str(run_log)}
        run.args["malloc_arena_max"] = env["MALLOC_ARENA_MAX"]
        if args.max_runs:
            env["TP_MAX_TRAINING_RUNS"] = str(args.max_runs)
        env.pop("TP_MAX_TRAINING_RUNS", None) if not args.max_runs else None
        server = start_server(port, env, Path(tmp) / "server.log", args.session_ttl, args.server_cpus)
        if args.browser_cpus:  # this process, and so Playwright's driver and Chromium, which it starts
            os.sched_setaffinity(0, args.browser_cpus)
        sampler = Sampler(server.pid, run)
        sampler.start()
        start = time.monotonic()
        try:
            extra = asyncio.run(drive(args, f"http://127.0.0.1:{port}", run, max_runs))
        except KeyboardInterrupt:  # Ctrl-C: report what was measured so far
            extra = {"interrupted_at_s": round(run.now(), 1)}
            run.rounds_end_s = run.rounds_end_s or run.now()
        finally:
            sampler.stop()
            stop_server(server)
            log_tail = (Path(tmp) / "server.log").read_text(errors="replace")[-2000:]
            server_runs = read_run_log(run_log)
    report = build_report(run, sampler, extra, time.monotonic() - start, max_runs)
    report["server_runs"] = server_run_summary(server_runs)
    report["server_log_tail"] = log_tail
    text = markdown(report)
    print("## Load test\n\n" + text)
    print("\nJSON " + json.dumps({k: v for k, v in report.items() if k not in ("problems", "memory_mib")}
                                 | {"memory_mib": {k: v for k, v in report["memory_mib"].items() if k != "samples"}}))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) if args.out.suffix == ".json" else text + "\n")
    return 0
