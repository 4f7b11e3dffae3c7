"""The report: latency percentiles, the server's own run times, memory, CPU and training, as JSON and Markdown."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from pathlib import Path

from .records import Action, Run, TrainingRecord
from .sampler import MACHINE_CORES, Sampler

ERROR_KINDS = ("exception", "page_error", "console_error", "connection", "timeout")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def latency_row(name: str, actions: list[Action]) -> dict:
    values = [a.latency_s for a in actions if a.latency_s is not None]
    server = [a.server_s for a in actions if a.server_s is not None]
    if not values:
        return {"name": name, "actions": len(actions), "p50_s": None, "p95_s": None, "max_s": None,
                "server_p50_s": None}
    return {"name": name, "actions": len(actions), "p50_s": percentile(values, 50), "p95_s": percentile(values, 95),
            "max_s": max(values), "server_p50_s": percentile(server, 50) if server else None}


def build_report(run: Run, sampler: Sampler, extra: dict, wall_s: float, max_runs: int) -> dict:
    measured = [a for a in run.actions if a.kind != "open"]
    pages = sorted({a.page for a in measured})
    kinds = sorted({a.kind for a in measured})
    after_round_1 = max(run.round_done_s.values()) if len(run.round_done_s) == run.args["sessions"] else None
    rss = [m[1] for m in sampler.memory]
    cpu = sampler.cpu_seconds()
    cores = MACHINE_CORES
    errors = [p for p in run.problems if p.kind in ERROR_KINDS]
    external = sorted({p.detail for p in run.problems if p.kind == "external_request"})
    return {
        "machine": machine_line(extra.get("chromium"), run.args),
        "command": "python -m benchmarks.load " + " ".join(run.args["argv"]),
        "sessions": run.args["sessions"], "wall_s": round(wall_s, 1),
        "latency": {"overall": latency_row("all", measured),
                    "open": latency_row("first load", [a for a in run.actions if a.kind == "open"]),
                    "pages": [latency_row(p, [a for a in measured if a.page == p]) for p in pages],
                    "kinds": [latency_row(k, [a for a in measured if a.kind == k]) for k in kinds]},
        "actions": len(run.actions),
        "errors": len(errors),
        "error_counts": {k: sum(p.kind == k for p in errors) for k in sorted({p.kind for p in errors})},
        "driver_problems": sum(p.kind == "driver" for p in run.problems),
        "external_requests": sum(p.kind == "external_request" for p in run.problems), "external_urls": external,
        "problems": [asdict(p) for p in run.problems[:200]],
        "memory_mib": {
            "start": _mib(rss[0] if rss else None),
            "after_round_1": _mib(sampler.rss_at(after_round_1)), "after_round_1_at_s": after_round_1,
            "end": _mib(sampler.rss_at(run.rounds_end_s)), "end_at_s": run.rounds_end_s,
            "max": _mib(max(rss) if rss else None),
            "after_close": _mib(sampler.rss_at(extra.get("released_s"))),
            "samples": [(round(t, 1), _mib(b)) for t, b in sampler.memory],
            "timeline": memory_timeline(sampler),
        },
        "cpu": {"cores": cores, "seconds": {k: round(v, 1) for k, v in cpu.items()},
                "server_s_per_action": round(cpu["server"] / max(1, len(run.actions)), 3),
                "chromium_s_per_action": round(cpu["chromium"] / max(1, len(run.actions)), 3),
                "machine_busy_s": round(sampler.machine_s, 1),
                "others_s": round(max(0.0, sampler.machine_s - sum(cpu.values())), 1)},
        "training": {"max_runs": max_runs, "runs": [asdict(t) | {"queue_wait_s": t.queue_wait_s}
                                                    for t in run.training],
                     "disconnect": disconnect_verdict(run.training)},
    }


def read_run_log(path: Path) -> list[dict]:
    """The server's own record of every script run ($TP_RUN_LOG, written by app_lib/runlog.py)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def server_run_summary(runs: list[dict]) -> dict:
    """Run time as the server measured it (app.py's sidebar and page), per page, for runs that ended "ok".

    "interrupted" runs were ended by Streamlit's control flow (cut short by a newer change of the same
    student, st.rerun, or st.stop) and are counted, not timed; "error" runs ended in an exception
    inside the script (Streamlit shows it in the page). A page's fragment rerunning on its own
    (app_lib.ui.page_fragment: a layer or head change) is a run too, counted apart in "fragment_runs".
    """
    finished = [r for r in runs if r["end"] == "ok"]

    def row(name: str, group: list[dict]) -> dict:
        seconds = [r["seconds"] for r in group]
        return {"name": name, "runs": len(group), "p50_s": percentile(seconds, 50) if seconds else None,
                "p95_s": percentile(seconds, 95) if seconds else None, "max_s": max(seconds) if seconds else None}

    pages = sorted({r["page"] for r in finished})
    return {"overall": row("all", finished), "pages": [row(p, [r for r in finished if r["page"] == p]) for p in pages],
            "ends": {end: sum(r["end"] == end for r in runs) for end in ("ok", "interrupted", "error")},
            "fragment_runs": sum(bool(r.get("fragment")) for r in finished)}


def memory_timeline(sampler: Sampler, every_s: float = 60.0) -> list[tuple[float, float | None]]:
    """(seconds, server RSS MiB) about every `every_s` seconds: is memory still growing, or flat?"""
    if not sampler.memory:
        return []
    end, marks, t = sampler.memory[-1][0], [], 0.0
    while t <= end:
        marks.append((round(t), _mib(sampler.rss_at(t))))
        t += every_s
    return marks


def disconnect_verdict(runs: list[TrainingRecord]) -> dict:
    """Did a waiting run start after the tab of a running one closed, while the others were still training?"""
    left = next((t for t in runs if t.left_at_s is not None), None)
    if left is None:
        return {"tested": False, "why": "no tab was closed (no more runs than training slots, or no run was "
                                        "waiting while the first one trained)"}
    waiting = [t for t in runs if t.was_queued and t.running_s is not None and t.running_s > left.left_at_s]
    if not waiting:
        return {"tested": True, "slot_freed": False, "why": "no waiting run started after the tab closed"}
    first = min(waiting, key=lambda t: t.running_s)
    others = [t for t in runs if t is not left and t is not first and not t.was_queued]
    still_training = all(t.finished_s is None or t.finished_s > first.running_s for t in others)
    return {"tested": True, "slot_freed": still_training, "closed_at_s": left.left_at_s,
            "next_started_at_s": first.running_s, "seconds_to_free": round(first.running_s - left.left_at_s, 1),
            "why": ("the waiting run started while every other run was still training" if still_training else
                    "another run had finished first, so this does not show the closed tab's slot was freed")}


def _mib(n: int | None) -> float | None:
    return None if n is None else round(n / 2**20, 1)


def machine_line(chromium: str | None, run_args: dict | None = None) -> str:
    import platform

    import streamlit

    from benchmarks.common import cpu_model

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    split = ""
    run_args = run_args or {}
    if run_args.get("server_cpus") or run_args.get("browser_cpus"):
        server, browsers = run_args.get("server_cpus") or "all", run_args.get("browser_cpus") or "all"
        split = f" (server on CPUs {server}, browsers on {browsers})"
    return (f"CPU: {cpu_model()}, {MACHINE_CORES} cores usable{split}, load average {load}; "
            f"Python {platform.python_version()}, Streamlit {streamlit.__version__}, Chromium {chromium}")


def server_runs_table(summary: dict | None) -> str:
    from benchmarks.common import format_table

    if not summary or not summary["overall"]["runs"]:
        return "no runs recorded"
    rows = [[r["name"], r["runs"], *(f"{r[k]:.2f} s" for k in ("p50_s", "p95_s", "max_s"))]
            for r in [summary["overall"], *summary["pages"]]]
    ends = ", ".join(f"{k}: {v}" for k, v in summary["ends"].items())
    return (format_table(["page", "runs", "p50", "p95", "max"], rows) + f"\n\nHow runs ended: {ends}; "
            f"of the timed runs, {summary.get('fragment_runs', 0)} reran only a page fragment")


def markdown(report: dict) -> str:
    from benchmarks.common import format_table

    def s(value):
        return "n/a" if value is None else f"{value:.2f} s"

    lat = report["latency"]
    rows = [[r["name"], r["actions"], s(r["p50_s"]), s(r["p95_s"]), s(r["max_s"]), s(r["server_p50_s"])]
            for r in [lat["overall"], *lat["pages"], lat["open"]]]
    head = ["page", "actions", "p50", "p95", "max", "server p50"]
    mem = report["memory_mib"]
    cpu, cores, wall = report["cpu"], report["cpu"]["cores"], report["wall_s"]
    cpu_rows = [[group, f"{sec:.0f} s", f"{sec / wall:.2f}", f"{100 * sec / (wall * cores):.0f}%"]
                for group, sec in [*cpu["seconds"].items(), ("other users", cpu["others_s"])]]
    train = report["training"]
    train_rows = [[t["session"], "yes" if t["was_queued"] else "no", s(t["queue_wait_s"]), t["final"]]
                  for t in train["runs"]]
    parts = [
        f"`{report['command']}`  \n{report['machine']}  \n{report['sessions']} sessions, {report['actions']} actions, "
        f"{report['wall_s']:.0f} s; errors: {report['errors']} {report['error_counts'] or ''}; "
        f"driver problems: {report['driver_problems']}; blocked requests to other hosts: "
        f"{report['external_requests']} {report['external_urls'] or ''}",
        "**Re-run latency** (input event to the end of the rerun, measured in the browser)\n\n"
        + format_table(head, rows),
        "**Server run time** (the server's own clock, from the sidebar's first line to the page's last, "
        "for every run that ended ok; $TP_RUN_LOG)\n\n" + server_runs_table(report.get("server_runs")),
        "**By action**\n\n" + format_table(head, [[r["name"], r["actions"], s(r["p50_s"]), s(r["p95_s"]),
                                                   s(r["max_s"]), s(r["server_p50_s"])] for r in lat["kinds"]]),
        "**Server memory (RSS, MiB)**\n\n" + format_table(
            ["start", "after round 1", "end", "max", "after tabs closed"],
            [[mem["start"], mem["after_round_1"], mem["end"], mem["max"], mem["after_close"]]])
        + "\n\nOver time (s: MiB): " + ", ".join(f"{t}: {m}" for t, m in mem.get("timeline", [])),
        f"**CPU over the run** ({cores} cores, {wall:.0f} s; per action: server {cpu['server_s_per_action']:.2f} s, "
        f"Chromium {cpu['chromium_s_per_action']:.2f} s)\n\n"
        + format_table(["process group", "CPU time", "cores used (avg)", "share of the machine"], cpu_rows),
        f"**Training** (at most {train['max_runs']} at once)\n\n"
        + (format_table(["session", "queued", "queue wait", "ended"], train_rows) if train_rows else "no runs")
        + f"\n\nClosed tab frees its slot: {json.dumps(train['disconnect'])}",
        "**Problems** (first 30)\n\n" + ("\n".join(f"- {p['at_s']} s, session {p['session']}, {p['page']}, "
                                                  f"{p['kind']}: {' '.join(p['detail'][:300].split())}"
                                                  for p in report["problems"][:30]) or "none"),
    ]
    return "\n\n".join(parts)
