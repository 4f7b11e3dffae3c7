"""app_lib.runlog: the server-side run timing the load test reads ($TP_RUN_LOG)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException, StopException

from app_lib import runlog
from app_lib.runlog import RUN_LOG_ENV, timed_run
from benchmarks.load import server_run_summary


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_nothing_is_written_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(RUN_LOG_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with timed_run("heatmaps"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_each_run_is_one_line_with_how_it_ended(tmp_path, monkeypatch):
    log = tmp_path / "runs.jsonl"
    monkeypatch.setenv(RUN_LOG_ENV, str(log))
    with timed_run("heatmaps", session="abc"):
        pass
    # Streamlit's own stop and rerun signals (the real classes) end a run as "interrupted", not "error".
    for exception, page in ((StopException(), "train"), (RerunException(None), "kv_cache"), (ValueError("x"), "home")):
        with pytest.raises(type(exception)), timed_run(page):
            raise exception
    runs = lines(log)
    assert [(r["page"], r["end"]) for r in runs] == [("heatmaps", "ok"), ("train", "interrupted"),
                                                     ("kv_cache", "interrupted"), ("home", "error")]
    assert all(r["seconds"] >= 0 for r in runs)
    assert [r["session"] for r in runs] == ["abc", None, None, None]  # whatever the caller names the session by

    summary = server_run_summary(runs)
    assert summary["overall"]["runs"] == 1  # only "ok" is timed; interrupted and error runs are counted
    assert summary["ends"] == {"ok": 1, "interrupted": 2, "error": 1}
    assert [p["name"] for p in summary["pages"]] == ["heatmaps"]


def test_a_fragment_inside_a_timed_run_is_part_of_that_run(tmp_path, monkeypatch):
    """app.py times the full run; a page fragment only writes its own line when it reruns alone."""
    log = tmp_path / "runs.jsonl"
    monkeypatch.setenv(RUN_LOG_ENV, str(log))
    with timed_run("heatmaps"):
        with timed_run("heatmaps", fragment=True):  # the fragment's first run, inside the full run
            pass
    with timed_run("heatmaps", fragment=True):  # a head change: the fragment alone
        pass
    with pytest.raises(StopException), timed_run("heatmaps"):  # the flag is cleared after an exception too
        raise StopException()
    runs = lines(log)
    assert [(r["page"], r.get("fragment", False), r["end"]) for r in runs] == [
        ("heatmaps", False, "ok"), ("heatmaps", True, "ok"), ("heatmaps", False, "interrupted")]
    assert server_run_summary(runs)["fragment_runs"] == 1


def test_the_run_log_imports_no_streamlit():
    """It tells Streamlit's control flow from errors by exception base class alone (checked above)."""
    tree = ast.parse(Path(runlog.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name.split(".")[0] == "streamlit" for name in imported), imported
