"""Training in the app: a run in a thread of the server vs a worker process per run (issue 14).

    python -m benchmarks.train_in_app              # both designs, 3 speed rounds, 2 page rounds
    python -m benchmarks.train_in_app --quick      # a smoke run: short runs, few page re-runs

(a) Speed. The Train page's default run (`TrainSettings()`), from `JobQueue.submit` to the end of the
    run with its model back in the server (a worker's start, imports included), next to
    `python -m model.train` with the same settings (the process's wall time, imports included; and
    the loop's own seconds, from the events). Rounds interleave CLI, thread and process.
    Target: the app's run within 1.3x the CLI's wall time.
(b) Page re-runs while two runs train. In this process (the server's stand-in) an AppTest of the
    heatmaps page changes the head again and again; each re-run is timed on this process's clock,
    as the server's run log would. Alone, then while two runs of the default model (3,000 steps,
    stopped afterwards) train in threads of this process or in worker processes. The page thread
    heartbeats the runs, as the Train page's fragment would. Target: p95 <= 0.3 s.

Neither design changes `sys.setswitchinterval` or thread priorities; torch keeps its default
threads in this process, and a worker uses cores // max runs (JobQueue.threads_per_run).
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

from app_lib.training_job import JobQueue, RunnerKind, TrainingJob, TrainSettings
from benchmarks.app_latency import _app_test
from benchmarks.common import parser, print_header, print_table

ROOT = Path(__file__).resolve().parents[1]
SPEED_TARGET, PAGE_TARGET = 1.3, 0.3
RUNNERS: tuple[RunnerKind, ...] = ("thread", "process")


def cli_command(settings: TrainSettings, out: Path) -> list[str]:
    """`python -m model.train` with the Train page's settings (its TrainConfig, flag by flag)."""
    train = settings.train_config()
    flags = {"n": settings.n, "vocab": settings.vocab, "d-model": settings.d_model, "n-heads": settings.n_heads,
             "n-kv-heads": settings.n_kv_heads, "n-layers": settings.n_layers, "lr": settings.lr,
             "batch-size": settings.batch_size, "steps": settings.steps, "seed": settings.seed,
             "warmup-steps": train.warmup_steps, "eval-every": train.eval_every, "pos-encoding": settings.pos_encoding,
             "device": "cpu", "out": out}
    return [sys.executable, "-m", "model.train", "--task", "reversal", "--force",
            *[part for key, value in flags.items() for part in (f"--{key}", str(value))]]


def time_cli(settings: TrainSettings, threads: int | None) -> tuple[float, float]:
    """(process wall seconds, the loop's seconds) of one `python -m model.train` run (threads: OMP_NUM_THREADS)."""
    env = os.environ | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        start = time.perf_counter()
        subprocess.run(cli_command(settings, out), cwd=ROOT, check=True, capture_output=True, env=env)
        wall = time.perf_counter() - start
        meta = json.loads((out / "config.json").read_text())["meta"]
    return wall, float(meta["train_seconds"])


def time_app(settings: TrainSettings, runner: RunnerKind) -> tuple[float, float]:
    """(submit to model back, the loop's seconds) of one run through a queue of its own."""
    job = TrainingJob(settings, "bench", runner=runner)
    start = time.perf_counter()
    JobQueue().submit(job)
    while not job.wait(1.0):
        job.heartbeat()
    wall = time.perf_counter() - start
    if job.status != "done":
        raise RuntimeError(f"the {runner} run ended {job.status}: {job.snapshot().error}")
    return wall, job.snapshot().latest.elapsed


def speed_rows(settings: TrainSettings, rounds: int, runners: tuple[RunnerKind, ...],
               cli_threads: int | None) -> list[list[object]]:
    times: dict[str, list[tuple[float, float]]] = {"cli": [], "thread": [], "process": []}
    for i in range(rounds):
        order = ["cli", *runners] if i % 2 == 0 else [*reversed(runners), "cli"]
        for what in order:
            print(f"  speed round {i + 1}: {what}", file=sys.stderr, flush=True)
            times[what].append(time_cli(settings, cli_threads) if what == "cli" else time_app(settings, what))
    cli_wall = statistics.median(w for w, _ in times["cli"])
    cli_loop = statistics.median(s for _, s in times["cli"])
    rows = []
    cli_label = "python -m model.train" + (f" (OMP_NUM_THREADS={cli_threads})" if cli_threads else "")
    for what, label in (("cli", cli_label), ("thread", "app, thread"), ("process", "app, worker process")):
        if not times[what]:
            continue
        wall = statistics.median(w for w, _ in times[what])
        loop = statistics.median(s for _, s in times[what])
        verdict = "" if what == "cli" else "met" if wall / cli_wall <= SPEED_TARGET else "missed"
        rows.append([label, f"{wall:.1f}", f"{min(w for w, _ in times[what]):.1f}", f"{wall / cli_wall:.2f}x",
                     f"{loop:.1f}", f"{loop / cli_loop:.2f}x", verdict])
    return rows


def page_rerun_times(at, reruns: int, jobs: list[TrainingJob]) -> list[float]:
    """Seconds of `reruns` heatmaps re-runs (a head change each), heartbeating `jobs` in between."""
    times = []
    for i in range(reruns):
        for job in jobs:
            job.heartbeat()
        head = at.selectbox(key="head")
        next_head = head.options[(i + 1) % len(head.options)]
        start = time.perf_counter()
        at.selectbox(key="head").set_value(int(next_head)).run()
        times.append(time.perf_counter() - start)
        if at.exception:
            raise RuntimeError(f"the page raised: {[e.value for e in at.exception]}")
    return times


def with_two_runs(runner: RunnerKind, settings: TrainSettings, measure):
    """(measure(jobs), steps/s of both runs meanwhile, the workers' MiB) while two runs train past their start."""
    queue = JobQueue(max_runs_override=2)
    jobs = [TrainingJob(settings, f"bench-{i}", runner=runner) for i in range(2)]
    for job in jobs:
        queue.submit(job)
    while any(queue.snapshot(job).steps_done < 5 for job in jobs):  # a worker's start is not what is measured
        if any(job.finished for job in jobs):
            raise RuntimeError(f"a {runner} run ended early: {[job.snapshot().error for job in jobs]}")
        for job in jobs:
            job.heartbeat()
        time.sleep(0.1)
    try:
        before, start = sum(queue.snapshot(job).steps_done for job in jobs), time.perf_counter()
        result = measure(jobs)
        pace = (sum(queue.snapshot(job).steps_done for job in jobs) - before) / (time.perf_counter() - start)
        workers_mib = sum(resident_mib(job.worker_pid) for job in jobs if job.worker_pid is not None)
    finally:
        for job in jobs:
            job.stop()
    for job in jobs:
        job.wait(120)
    return result, pace, workers_mib


def resident_mib(pid: int) -> float:
    """A process's resident memory (VmRSS), MiB."""
    with open(f"/proc/{pid}/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kib / 1024


def page_rows(settings: TrainSettings, rounds: int, reruns: int) -> list[list[object]]:
    at = _app_test()
    at.run()
    at.switch_page("pages/heatmaps.py").run()
    page_rerun_times(at, 3, [])  # warm: caches filled, figures built once
    samples: dict[str, list[float]] = {"alone": [], "thread": [], "process": []}
    paces: dict[str, list[float]] = {"alone": [], "thread": [], "process": []}
    memory: dict[str, float] = {"alone": 0.0, "thread": 0.0, "process": 0.0}
    for i in range(rounds):
        order = ["alone", *RUNNERS] if i % 2 == 0 else [*reversed(RUNNERS), "alone"]
        for what in order:
            print(f"  page round {i + 1}: {what}", file=sys.stderr, flush=True)
            if what == "alone":
                samples[what] += page_rerun_times(at, reruns, [])
            else:
                times, pace, mib = with_two_runs(what, settings, lambda jobs: page_rerun_times(at, reruns, jobs))
                samples[what] += times
                paces[what].append(pace)
                memory[what] = max(memory[what], mib)
    rows = []
    for what, label in (("alone", "no training"), ("thread", "two runs, threads"),
                        ("process", "two runs, worker processes")):
        times = sorted(samples[what])
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        pace = f"{statistics.median(paces[what]):.1f}" if paces[what] else "-"
        workers = f"{memory[what]:.0f}" if memory[what] else "-"
        rows.append([label, len(times), f"{statistics.median(times):.3f}", f"{p95:.3f}", f"{times[-1]:.3f}", pace,
                     workers, "met" if p95 <= PAGE_TARGET else "missed"])
    return rows


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__.split("\n\n")[0])
    cli.add_argument("--rounds", type=int, default=3, help="speed rounds (CLI, thread, process each)")
    cli.add_argument("--page-rounds", type=int, default=2, help="page rounds (alone, threads, processes each)")
    cli.add_argument("--reruns", type=int, default=30, help="page re-runs per condition and round")
    cli.add_argument("--runners", nargs="+", choices=RUNNERS, default=list(RUNNERS), help="designs to time in (a)")
    cli.add_argument("--cli-threads", type=int, help="OMP_NUM_THREADS for the CLI (default: torch's, one per core)")
    cli.add_argument("--speed-only", action="store_true", help="only (a)")
    args = cli.parse_args(argv)
    print_header("Training runner: thread vs process (issue 14)")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    # every step runs (no stop when learned): the same work as the CLI, and background runs that last
    speed = TrainSettings(steps=40, stop_when_learned=False) if args.quick else TrainSettings(stop_when_learned=False)
    background = TrainSettings(steps=3000, stop_when_learned=False)
    rounds, page_rounds, reruns = (1, 1, 5) if args.quick else (args.rounds, args.page_rounds, args.reruns)
    print_table(f"(a) the Train page's default run ({speed.steps} steps) vs the CLI, median of {rounds} "
                f"(target: app wall <= {SPEED_TARGET}x CLI wall)",
                ["run", "wall s", "min s", "vs CLI", "loop s", "loop vs CLI", "verdict"],
                speed_rows(speed, rounds, tuple(args.runners), args.cli_threads))
    if args.speed_only:
        return 0
    print_table(f"(b) heatmaps page re-runs (head change, AppTest, this process's clock), {page_rounds} round(s) "
                f"of {reruns} (target: p95 <= {PAGE_TARGET} s)",
                ["while", "re-runs", "p50 s", "p95 s", "max s", "training steps/s (both runs)", "workers' RSS MiB",
                 "verdict"],
                page_rows(background, page_rounds, reruns))
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
