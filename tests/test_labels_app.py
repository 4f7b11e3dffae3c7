"""Issue 18 through AppTest: what a row, a position and a token mean, and the compare page's URL state.

Every decoder view's rows read "position:token → prediction" with the prompt's end dashed; every
accuracy-by-position chart has the ticks of explain.labels and its note beneath; the compare page's
models and layer live in the URL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explain.labels import ROW_NOTE, dates_axis, reversal_axis
from explain.padding import COLUMN_NOTE
from model.tasks.dates import TARGET_FORMAT

pytestmark = pytest.mark.usefixtures("no_pages_folder_mode")  # see tests/conftest.py

APP = str(Path(__file__).resolve().parents[1] / "app.py")
REVERSAL, DATES = "reversal-mha", "dates"  # shipped, as are reversal-gqa and the Shakespeare pair


def open_page(page: str, query: dict[str, str] | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params.update(query or {})
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def figures(at) -> dict[str, dict]:
    """Every plotly chart of the page, by its title."""
    found = {}
    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        title = spec["layout"].get("title", {})
        found[title.get("text", "") if isinstance(title, dict) else str(title)] = spec
    return found


def chart(at, start: str) -> dict:
    return next(spec for title, spec in figures(at).items() if title.startswith(start))


def dashed(spec: dict) -> list[dict]:
    return [s for s in spec["layout"].get("shapes", []) if s.get("line", {}).get("dash") == "dash"]


def captions(at) -> str:
    return " ".join(c.value for c in at.caption)


# ------------------------------------------------------------------ the compare page's URL state


def test_the_compare_page_puts_its_models_and_layer_in_the_url():
    """The browser writes a bound widget's value into the URL (tests/browser/test_labels_browser.py sees it);
    here: both widgets are bound, each to its own key."""
    at = open_page("pages/compare_attention.py", {"checkpoint": REVERSAL})
    family, layer = at.radio(key="cmp_family"), at.selectbox(key="cmp_layer")
    assert (family.value, layer.value) == ("reversal", 0)
    assert (family.proto.query_param_key, layer.proto.query_param_key) == ("cmp_family", "cmp_layer")
    layer.set_value(1).run()
    assert not at.exception and not at.warning
    assert any(title.startswith("reversal-gqa: layer 1, 4 query heads over 2 K/V head(s)") for title in figures(at))


def test_a_compare_link_reopens_its_models_and_layer():
    at = open_page("pages/compare_attention.py", {"checkpoint": DATES, "cmp_family": "reversal", "cmp_layer": "1"})
    assert at.radio(key="cmp_family").value == "reversal" and at.selectbox(key="cmp_layer").value == 1
    assert any(title.startswith("reversal-gqa: layer 1") for title in figures(at)) and not at.warning


def test_bad_compare_links_get_a_note_and_the_default():
    at = open_page("pages/compare_attention.py", {"checkpoint": REVERSAL, "cmp_family": "llama", "cmp_layer": "9"})
    notes = " ".join(w.value for w in at.warning)
    assert "cmp_family" in notes and "cmp_layer" in notes and "not one of the choices here" in notes
    assert at.radio(key="cmp_family").value == "reversal" and at.selectbox(key="cmp_layer").value == 0


def test_switching_the_sidebar_checkpoint_keeps_the_compare_view_without_a_warning():
    at = open_page("pages/compare_attention.py", {"checkpoint": REVERSAL})
    at.selectbox(key="cmp_layer").set_value(1).run()
    at.selectbox(key="checkpoint").set_value("reversal-gqa").run()
    assert not at.exception and not at.warning
    assert at.radio(key="cmp_family").value == "reversal" and at.selectbox(key="cmp_layer").value == 1


def test_a_layer_the_other_models_lack_goes_back_quietly():
    at = open_page("pages/compare_attention.py", {"checkpoint": REVERSAL, "cmp_family": "shakespeare"})
    at.selectbox(key="cmp_layer").set_value(2).run()  # the Shakespeare models have 3 layers, the reversal ones 2
    at.query_params["cmp_layer"] = "2"  # as the browser writes it (AppTest does not)
    at.radio(key="cmp_family").set_value("reversal").run()
    assert not at.exception and not at.warning
    assert at.selectbox(key="cmp_layer").value == 0 and any(t.startswith("reversal-mha: layer 0") for t in figures(at))


# ------------------------------------------------------------------ accuracy by position: one axis, one note


@pytest.mark.parametrize("checkpoint", [REVERSAL, DATES])
def test_heads_off_accuracy_uses_the_one_axis_and_its_note(checkpoint):
    at = open_page("pages/heads_off.py", {"checkpoint": checkpoint, "off_L0_H0" if checkpoint == REVERSAL
                                          else "off_cross_L0_H0": "true"})
    if checkpoint == REVERSAL:
        axis = reversal_axis(8, 0.1)
    else:
        axis = dates_axis(TARGET_FORMAT, "<s>", "</s>")
    spec = chart(at, "Accuracy by position")
    ticks = [x.replace("&lt;", "<").replace("&gt;", ">") for x in spec["data"][0]["x"]]
    assert tuple(ticks) == axis.ticks
    assert axis.note in captions(at)


@pytest.mark.slow
def test_compare_accuracy_uses_the_one_axis_and_its_note():
    at = open_page("pages/compare_attention.py", {"checkpoint": REVERSAL})
    at.button(key="cmp_evaluate").click().run()
    assert not at.exception
    axis = reversal_axis(8, 0.1)
    spec = chart(at, "Accuracy by position on fresh sequences")
    assert all(tuple(trace["x"]) == axis.ticks for trace in spec["data"])
    assert axis.note in captions(at)


# ------------------------------------------------------------------ rows say what they read and predict


def test_padded_rows_say_what_they_predict_with_the_prompt_dashed():
    at = open_page("pages/heatmaps.py", {"checkpoint": REVERSAL, "batch": "true", "second": "7 2 6"})
    spec = chart(at, "Layer 0, head 0: both rows")
    heatmaps = [t for t in spec["data"] if t["type"] == "heatmap" and t.get("name") != "masked"]
    assert heatmaps[0]["y"][0].startswith("0:3 → ") and heatmaps[0]["y"][8].startswith("8:6 → ")
    assert any(y == "0:&lt;pad&gt;" for y in heatmaps[1]["y"])  # a pad row predicts nothing
    assert dashed(spec) and COLUMN_NOTE in captions(at) and ROW_NOTE in captions(at)


def test_padded_decoder_rows_of_the_encoder_decoder():
    at = open_page("pages/heatmaps.py", {"checkpoint": DATES, "batch": "true", "attention": "decoder"})
    spec = chart(at, "Layer 0, head 0: both rows")
    rows = next(t for t in spec["data"] if t["type"] == "heatmap" and t.get("name") != "masked")["y"]
    assert rows[0].startswith("0:&lt;s&gt; → ") and all(" → " in row for row in rows if "pad" not in row)
    assert dashed(spec)


@pytest.mark.parametrize("checkpoint, first", [(REVERSAL, "0:3 → "), (DATES, "0:&lt;s&gt; → ")])
def test_the_logit_lens_columns_say_what_they_predict(checkpoint, first):
    at = open_page("pages/logit_lens.py", {"checkpoint": checkpoint})
    spec = chart(at, "Top token and its probability")
    columns = spec["data"][0]["x"]
    assert columns[0].startswith(first) and all(" → " in column for column in columns)
    assert dashed(spec) and ROW_NOTE in captions(at)
    assert any(" → " in m.value and "on top from" in m.value for m in at.markdown)


def test_hidden_tokens_show_predictions_before_and_after():
    at = open_page("pages/hide_token.py", {"checkpoint": REVERSAL, "hide": "2:4"})
    bars = chart(at, "How far each output moved")
    assert all(" → " in x for x in bars["data"][0]["x"]) and dashed(bars)
    assert all(isinstance(token, str) and token for token in bars["data"][0]["customdata"])
    grid = chart(at, "Layer 0: the hidden tokens")
    rows = next(t for t in grid["data"] if t["type"] == "heatmap" and t.get("name") != "masked")["y"]
    assert all(" → " in row for row in rows) and dashed(grid)
    table = at.dataframe[0].value
    assert list(table["token written by"])[7:9] == ["you", "the model"]
    assert "with the tokens hidden" in captions(at)


def test_the_kv_prefill_rows_say_what_each_prompt_token_predicts():
    at = open_page("pages/kv_cache.py", {"checkpoint": REVERSAL})
    spec = chart(at, "Prefill, layer 0")
    heatmap = next(t for t in spec["data"] if t["type"] == "heatmap" and t.get("name") != "masked")
    assert all(" → " in row for row in heatmap["y"]) and not any(" → " in col for col in heatmap["x"])
    assert ROW_NOTE in captions(at)
    at.button(key="kv_next").click().run()
    step = " ".join(m.value for m in at.markdown if "generated so far" in m.value)
    assert "as text:" in step  # the decoded text beside the tokens
    assert "Settings: greedy" in captions(at)  # and how they were produced
