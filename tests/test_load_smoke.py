"""`python -m benchmarks.load --quick` runs end to end: a server, two browser sessions, one training run.

Benchmarks are not tests: no latency or memory number is checked, only that the report has its
fields and that no session saw an error (exception box, page or console error, lost connection,
a rerun that never finished). About a minute on an idle 2-core machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.mark.slow
@pytest.mark.browser
def test_quick_load_run_reports_every_field_and_no_errors(tmp_path):
    if not os.path.exists(CHROMIUM_PATH):
        pytest.fail(f"chromium not found at {CHROMIUM_PATH} (see tests/browser/conftest.py)", pytrace=False)
    out = tmp_path / "load.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.load", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for heading in ("Re-run latency", "Server run time", "By action", "Server memory", "CPU over the run", "Training"):
        assert heading in done.stdout, done.stdout
    header = next(line for line in done.stdout.splitlines() if line.startswith("| page"))
    assert all(column in header for column in ("actions", "p50", "p95", "max")), header

    report = json.loads(out.read_text())
    overall = report["latency"]["overall"]
    assert overall["actions"] > 0 and {"p50_s", "p95_s", "max_s"} <= overall.keys()
    assert {p["name"] for p in report["latency"]["pages"]} >= {"heatmaps", "attention_steps", "embeddings"}
    assert set(report["memory_mib"]) >= {"start", "after_round_1", "end", "max", "after_close"}
    assert set(report["cpu"]["seconds"]) == {"server", "chromium", "driver"}
    assert len(report["training"]["runs"]) == 1 and report["training"]["runs"][0]["queue_wait_s"] is not None
    assert report["errors"] == 0, report["problems"]
    server = report["server_runs"]  # the server's own timing of every run ($TP_RUN_LOG)
    assert server["overall"]["runs"] > 0 and server["ends"]["error"] == 0
    assert {p["name"] for p in server["pages"]} >= {"heatmaps", "attention_steps", "embeddings"}
    assert len(report["memory_mib"]["timeline"]) >= 1


@pytest.mark.slow
@pytest.mark.browser
def test_page_cost_prints_a_row_per_page():
    done = subprocess.run([sys.executable, "-m", "benchmarks.page_cost", "--pages", "heatmaps", "embeddings",
                           "--actions", "1", "--settle", "0.5"], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("| ")}
    assert {"heatmaps (navigate)", "heatmaps", "embeddings (navigate)", "embeddings", "all changes"} <= rows.keys()
    assert "problems" not in done.stdout


def test_cpu_lists_for_the_server_and_browser_split():
    from benchmarks.load import cpu_list, parse

    assert cpu_list("0") == {0} and cpu_list("0,1") == {0, 1} and cpu_list("0-2,5") == {0, 1, 2, 5}
    args = parse(["--server-cpus", "0", "--browser-cpus", "1"])
    assert args.server_cpus == {0} and args.browser_cpus == {1}
    assert parse([]).server_cpus is None
