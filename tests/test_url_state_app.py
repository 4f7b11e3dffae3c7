"""Issue 18's URL state and labels through AppTest: the KV-cache page's settings live in the URL."""

from __future__ import annotations

import pytest
from conftest import all_figures, open_page

from app_lib.checkpoints import list_checkpoints
from viz.style import CELL_FORMAT, MIN_TICK_PX

pytestmark = pytest.mark.usefixtures("no_pages_folder_mode")  # see tests/conftest.py

REVERSAL = "reversal-mha"
needs_reversal = pytest.mark.skipif(REVERSAL not in {e.name for e in list_checkpoints()}, reason="no reversal-mha")


@needs_reversal
def test_a_kv_link_reopens_its_settings():
    at = open_page("pages/kv_cache.py", {"checkpoint": REVERSAL, "kv_temperature": "0.8", "kv_top_k": "3",
                                         "kv_top_p": "0.5", "kv_layer": "1", "kv_never_special": "false"})
    assert at.slider(key="kv_temperature").value == pytest.approx(0.8)
    assert at.number_input(key="kv_top_k").value == 3
    assert at.slider(key="kv_top_p").value == pytest.approx(0.5)
    assert at.selectbox(key="kv_layer").value == 1 and at.toggle(key="kv_never_special").value is False
    assert not at.warning


@needs_reversal
def test_bad_kv_links_get_a_note():
    bad = open_page("pages/kv_cache.py", {"checkpoint": REVERSAL, "kv_temperature": "hot", "kv_top_k": "-3"})
    notes = " ".join(w.value for w in bad.warning)
    assert "kv_temperature" in notes and "kv_top_k" in notes


@needs_reversal
def test_kv_charts_use_one_label_convention_and_say_their_units():
    at = open_page("pages/kv_cache.py", {"checkpoint": REVERSAL})
    at.button(key="kv_next").click().run()
    charts = {f["layout"]["title"]["text"]: f for f in all_figures(at) if isinstance(f["layout"].get("title"), dict)}
    next_token = next(f for t, f in charts.items() if t.startswith("Step"))
    assert all("(id " in x and ":" not in x for trace in next_token["data"] for x in trace.get("x", []))
    growth = charts["KV-cache size after each step"]
    assert growth["layout"]["yaxis"]["title"]["text"] in ("bytes", "KiB", "MiB")
    assert any("position:token" in c.value for c in at.caption)
    assert any("as text:" in m.value for m in at.markdown)


@needs_reversal
def test_heatmap_rows_say_what_they_predict_and_hover_names_the_cell():
    at = open_page("pages/heatmaps.py", {"checkpoint": REVERSAL})
    one_head = next(f for f in all_figures(at) if f["layout"]["title"]["text"].startswith("Layer 0, head 0"))
    heatmap = next(t for t in one_head["data"] if t["type"] == "heatmap" and t.get("name") != "masked")
    assert all(" → " in y for y in heatmap["y"])
    hover = heatmap["customdata"][-1][0]
    assert hover.startswith(f"query {len(heatmap['y']) - 1} '") and "→ key 0 '" in hover and ": weight " in hover
    assert any(s.get("line", {}).get("dash") == "dash" for s in one_head["layout"].get("shapes", []))
    assert any("predicts next" in c.value for c in at.caption)


@needs_reversal
@pytest.mark.parametrize("page", ["pages/heatmaps.py", "pages/attention_steps.py", "pages/kv_cache.py"])
def test_presentation_mode_restyles_every_chart_from_the_link(page):
    at = open_page(page, {"checkpoint": REVERSAL, "present": "true"})
    assert at.toggle(key="present").value is True
    for figure in all_figures(at):
        layout = figure["layout"]
        assert layout["height"] <= 720
        axes = {k: v for k, v in layout.items() if k.startswith(("xaxis", "yaxis"))}
        assert axes and all(axis["tickfont"]["size"] >= 18 for k, axis in axes.items() if k.startswith("yaxis"))
        # x labels as large as their columns allow (viz.style.tick_font_px), never below MIN_TICK_PX
        assert all(axis["tickfont"]["size"] >= MIN_TICK_PX for axis in axes.values()), layout.get("title")
    one_head = [f for f in all_figures(at) if f["layout"]["title"]["text"].startswith("Layer 0, head 0")]
    for figure in one_head:  # one 15 x 15 matrix: its values are printed in the cells
        assert [t.get("texttemplate") for t in figure["data"] if t.get("name") != "masked"] == [CELL_FORMAT]


@needs_reversal
def test_presentation_mode_is_off_by_default_and_toggles():
    at = open_page("pages/heatmaps.py", {"checkpoint": REVERSAL})
    assert at.toggle(key="present").value is False
    assert all("tickvals" not in figure["layout"].get("xaxis", {}) for figure in all_figures(at))
    at.toggle(key="present").set_value(True).run()
    assert not at.exception and all(figure["layout"]["height"] <= 720 for figure in all_figures(at))
    assert all(figure["layout"]["yaxis"]["tickfont"]["size"] >= 18 for figure in all_figures(at))


@needs_reversal
@pytest.mark.parametrize("page", ["pages/embeddings.py", "pages/positional.py", "pages/compare_attention.py",
                                  "pages/heads_off.py", "pages/hide_token.py", "pages/logit_lens.py", "pages/train.py"])
def test_presentation_mode_on_every_other_page(page):
    at = open_page(page, {"checkpoint": REVERSAL, "present": "true"})
    for figure in all_figures(at):
        layout = figure["layout"]
        assert layout["height"] <= 720 and layout["font"]["size"] >= 18, layout.get("title")
