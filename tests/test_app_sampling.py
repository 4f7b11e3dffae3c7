"""Sampling settings on screen, through AppTest: the KV-cache page's top-p and "never generate special
tokens" controls, its next-token chart, and how the sidebar's continuation says it was produced."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from conftest import figures, open_page

from model.checkpoint import peek

pytestmark = pytest.mark.usefixtures("no_pages_folder_mode")  # see tests/conftest.py

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = "shakespeare-mha"
needs_shakespeare = pytest.mark.skipif(not (ROOT / "checkpoints" / SHAKESPEARE).is_dir(),
                                       reason="the shipped Shakespeare checkpoint is missing")


def next_token_chart(at) -> dict:
    found = [f for title, f in figures(at).items() if title.startswith("Step ")]
    assert found, "no next-token chart on the page"
    return found[0]


def values(data) -> list[float]:
    """A plotly array: a list, or numpy's bytes as plotly writes them ({"dtype", "bdata"})."""
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"])).tolist()
    return list(data)


def bars(figure: dict, name: str) -> list[str]:
    return [x for trace in figure["data"] if trace.get("name") == name and trace["type"] == "bar" for x in trace["x"]]


@needs_shakespeare
def test_kv_page_never_writes_unk_and_redraws_the_distribution_for_new_settings():
    at = open_page("pages/kv_cache.py", {"checkpoint": SHAKESPEARE, "text": "ROMEO"})
    assert at.toggle(key="kv_never_special").value is True
    assert any("<unk>" in c.value and "exactly 0" in c.value for c in at.caption)  # the option, explained
    for _ in range(4):
        at.button(key="kv_next").click().run()
    assert not at.exception
    generated = next(m.value for m in at.markdown if "generated so far" in m.value)
    assert "<unk>" not in generated
    greedy = next_token_chart(at)
    assert greedy["layout"]["title"]["text"].startswith("Step 4: greedy")

    at.slider(key="kv_temperature").set_value(1.0).run()
    at.number_input(key="kv_top_k").set_value(5).run()
    figure = next_token_chart(at)
    title = figure["layout"]["title"]["text"].replace("<br>", " ")  # app_lib.ui.chart wraps long titles
    vocab = peek(ROOT / "checkpoints" / SHAKESPEARE).config.vocab_size  # the chart counts the whole vocabulary
    assert "Step 4" in title and title.endswith(f"the 5 kept of {vocab} tokens (20 of {vocab} shown)"), title
    kept = bars(figure, "kept") + bars(figure, "chosen")
    cut = bars(figure, "cut (never drawn)")
    assert len(kept) + len(cut) == 20 and 5 <= len(kept) <= 6  # 5 kept (+ the chosen one, drawn greedily before)
    kept_heights = [y for t in figure["data"] if t.get("name") in ("kept", "chosen") for y in values(t["y"])]
    assert min(kept_heights) > 0  # kept bars are never empty
    assert any(t.get("name", "").startswith("drawn from") for t in figure["data"])
    assert any("earlier settings" in c.value for c in at.caption)  # the step was drawn greedily

    at.slider(key="kv_top_p").set_value(0.5).run()
    assert not at.exception and "kept" in next_token_chart(at)["layout"]["title"]["text"]
    at.button(key="kv_next").click().run()  # the next step uses the new settings: they now match
    assert not at.exception and not any("earlier settings" in c.value for c in at.caption)


@needs_shakespeare
def test_the_sidebar_continuation_says_how_it_was_produced():
    at = open_page("pages/heatmaps.py", {"checkpoint": SHAKESPEARE, "text": "ROMEO"})
    line = next(m.value for m in at.markdown if "The model continues" in m.value)
    assert "sampled at temperature 0.8" in line and "never generated: <unk>" in line
    assert line.count("<unk>") == 1, line  # only where it says it is never generated


def test_reversal_answer_says_greedy():
    at = open_page("pages/heatmaps.py", {"checkpoint": "reversal-gqa"})  # the default input: the task's length
    line = next(m.value for m in at.markdown if "reverses it to" in m.value)
    assert "greedy" in line
