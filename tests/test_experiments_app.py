"""The experiment pages through AppTest: heads off (grid, URL, bad links, every head off, the importance map),
hide a token, the logit lens, and the attention pages' batch (padding) switch."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import figures, open_page, save_tiny_user_models

from app_lib.checkpoints import list_checkpoints

pytestmark = pytest.mark.usefixtures("no_pages_folder_mode")  # see tests/conftest.py

LAYER0_OFF = {f"off_L0_H{h}": "true" for h in range(4)}
SHIPPED = [e.name for e in list_checkpoints() if e.source == "shipped" and e.error is None]
USER = ["user/tiny-dates", "user/tiny-words"]  # an untrained encoder-decoder; a GPT without a task
NEW_PAGES = ["pages/heads_off.py", "pages/hide_token.py", "pages/logit_lens.py"]


@pytest.fixture(scope="module")
def user_models(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("user_models_experiments")
    save_tiny_user_models(root)
    return root


@pytest.fixture(autouse=True)
def _user_models_env(user_models, monkeypatch):
    monkeypatch.setenv("TP_USER_MODELS", str(user_models))


def accuracy_figure(at) -> dict:
    return next(f for t, f in figures(at).items() if t.startswith("Accuracy by position"))


def texts(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [w.value for w in at.warning]
                     + [i.value for i in at.info] + [e.value for e in at.error])


def test_heads_off_link_switches_layer_zero_off_and_the_accuracy_falls():
    intact = open_page("pages/heads_off.py", {"checkpoint": "reversal-mha"})
    assert len(intact.get("plotly_chart")) == 2
    before = accuracy_figure(intact)["data"][1]["y"]
    at = open_page("pages/heads_off.py", {"checkpoint": "reversal-mha"} | LAYER0_OFF)
    assert at.checkbox(key="off_L0_H2").value and not at.checkbox(key="off_L1_H2").value
    after = accuracy_figure(at)["data"][1]["y"]
    assert sum(after[7:]) / 8 < 0.3 < sum(before[7:]) / 8  # the reversed half falls towards chance
    assert "layer 0 head 3" in texts(at)


def test_heads_off_grid_tick_and_layer_shortcut():
    at = open_page("pages/heads_off.py", {"checkpoint": "reversal-gqa"})
    at.checkbox(key="off_L1_H2").check().run()
    assert not at.exception and "layer 1 head 2" in texts(at)
    at.button(key="layer_off_self_0").click().run()
    assert not at.exception and all(at.checkbox(key=f"off_L0_H{h}").value for h in range(4))
    at.button(key="heads_all_on").click().run()
    assert not any(at.checkbox(key=f"off_L{l}_H{h}").value for l in range(2) for h in range(4))


def test_heads_off_bad_links_get_a_message():
    at = open_page("pages/heads_off.py", {"checkpoint": "reversal-mha", "off_L5_H9": "true", "off_L0_H1": "maybe",
                                          "off_cross_L0_H0": "true"})
    warnings = [w.value for w in at.warning]
    assert any("off_L5_H9" in w and "not a head" in w for w in warnings)
    assert any("off_cross_L0_H0" in w for w in warnings)
    assert any("off_L0_H1" in w and "not true or false" in w for w in warnings)
    assert not at.checkbox(key="off_L0_H1").value


def test_every_head_off_is_said_and_drawn():
    query = {"checkpoint": "reversal-mqa"} | {f"off_L{l}_H{h}": "true" for l in range(2) for h in range(4)}
    at = open_page("pages/heads_off.py", query)
    assert any("Every head is off" in w.value for w in at.warning)
    assert len(at.get("plotly_chart")) == 2


def test_find_the_important_heads_reports_redundant_layer_zero():
    at = open_page("pages/heads_off.py", {"checkpoint": "reversal-gqa"})
    at.button(key="find_heads").click().run()
    assert not at.exception
    assert any(t.startswith("Drop in") for t in figures(at))
    assert "layer 0 are redundant" in texts(at)


@pytest.mark.parametrize("name, query", [("dates", {"off_cross_L1_H2": "true", "off_encoder_L0_H0": "true"}),
                                          ("shakespeare-mha", {"off_L2_H1": "true"})])
def test_heads_off_on_the_other_models(name, query):
    at = open_page("pages/heads_off.py", {"checkpoint": name} | query)
    assert at.checkbox(key=next(iter(query))).value
    if name == "shakespeare-mha":
        assert any("no accuracy" in i.value for i in at.info)


@pytest.mark.parametrize("name", ["reversal-mha", "dates"])
def test_hide_a_token(name):
    at = open_page("pages/hide_token.py", {"checkpoint": name})
    assert len(at.get("plotly_chart")) == 0 and "No token is hidden" in texts(at)
    box = at.multiselect(key="hide")
    box.select(box.options[1]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 2 and "changes" in texts(at)


def test_hide_link_opens_the_choice_and_bad_values_get_a_message():
    at = open_page("pages/hide_token.py", {"checkpoint": "reversal-mha", "hide": ["1:1", "2:4"]})
    assert at.multiselect(key="hide").value == ["1:1", "2:4"] and len(at.get("plotly_chart")) == 2
    at = open_page("pages/hide_token.py", {"checkpoint": "reversal-mha", "hide": "99:z"})
    assert any("99:z" in w.value and "not one of the choices" in w.value for w in at.warning)
    assert at.multiselect(key="hide").value == [] and "No token is hidden" in texts(at)


@pytest.mark.parametrize("name", ["reversal-mha", "dates", "shakespeare-mqa"])
def test_logit_lens_page(name):
    at = open_page("pages/logit_lens.py", {"checkpoint": name})
    assert len(at.get("plotly_chart")) == 2
    assert "on top from" in texts(at)


@pytest.mark.parametrize("page, charts", [("pages/heatmaps.py", 2), ("pages/attention_steps.py", 7)])
@pytest.mark.parametrize("name, pad", [("reversal-mha", "left"), ("reversal-mha", "right"), ("dates", None)])
def test_the_batch_switch_draws_the_padded_batch(page, charts, name, pad):
    query = {"checkpoint": name, "batch": "true"} | ({"pad": pad} if pad else {})
    at = open_page(page, query)
    assert len(at.get("plotly_chart")) == charts + 3
    assert "largest difference" in texts(at)
    padded = next(f for t, f in figures(at).items() if "pad columns masked" in t)
    assert any(trace.get("name") == "masked" for trace in padded["data"])  # the grey layer under pad columns


def test_an_empty_second_input_gets_a_message():
    at = open_page("pages/heatmaps.py", {"checkpoint": "reversal-mha", "batch": "true", "second": ""})
    assert any("Second input" in e.value and "empty" in e.value for e in at.error)
    assert len(at.get("plotly_chart")) == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED + USER)
def test_every_experiment_works_on_every_checkpoint(name):
    """Each new page, one head off, one token hidden, and the batch switch, on every checkpoint."""
    head = "off_cross_L1_H1" if "dates" in name else "off_L1_H1"
    for page in NEW_PAGES:
        at = open_page(page, {"checkpoint": name, head: "true"})
    at = open_page("pages/hide_token.py", {"checkpoint": name})
    box = at.multiselect(key="hide")
    box.select(box.options[0]).run()
    assert not at.exception and len(at.get("plotly_chart")) == 2
    at = open_page("pages/heads_off.py", {"checkpoint": name})
    if not at.button(key="find_heads").disabled:
        at.button(key="find_heads").click().run()
        assert not at.exception and any(t.startswith("Drop in") for t in figures(at))
    at = open_page("pages/heatmaps.py", {"checkpoint": name, "batch": "true"})
    assert len(at.get("plotly_chart")) == 5 and "largest difference" in texts(at)


@pytest.mark.parametrize("text", ["", "zebra ☃"])
def test_experiment_pages_refuse_bad_input_with_a_message(text):
    for page in NEW_PAGES:
        at = open_page(page, {"checkpoint": "reversal-mha", "text": text})
        assert at.error and len(at.get("plotly_chart")) == 0


def test_an_example_fills_the_second_input():
    at = open_page("pages/heatmaps.py", {"checkpoint": "dates", "batch": "true"})
    example = at.selectbox(key="second_example").options[-1]
    at.selectbox(key="second_example").set_value(example).run()
    assert not at.exception and at.text_input(key="second").value == example
    assert len(at.get("plotly_chart")) == 5
