"""The app's second part through Streamlit's AppTest: MHA vs GQA vs MQA, the KV cache page, the Train page, and
what a broken user checkpoint says.

Every checkpoint present is visited (shipped ones plus a tiny encoder-decoder and a tiny word
GPT saved in a temporary user folder, so those paths are always covered). The Train page is
driven through a short run to completion by re-running the script until the job is done.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from conftest import figures, open_page, save_tiny_user_models

from app_lib.checkpoints import CheckpointError, list_checkpoints, load_model
from app_lib.training_job import JOB_QUEUE
from model import load_checkpoint

pytestmark = pytest.mark.usefixtures("no_pages_folder_mode")  # see tests/conftest.py

SHIPPED = [e.name for e in list_checkpoints() if e.source == "shipped" and e.error is None]
USER = ["user/tiny-dates", "user/tiny-words"]
START = "FormSubmitter:train_settings-Start training"


@pytest.fixture(scope="module")
def user_models(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("user_models_part2")
    save_tiny_user_models(root)
    return root


@pytest.fixture(autouse=True)
def _user_models_env(user_models, monkeypatch):
    monkeypatch.setenv("TP_USER_MODELS", str(user_models))


def has_formula(at) -> bool:
    """The page shows a formula (app_lib.ui.show_formula: inline KaTeX in markdown)."""
    return any(m.value.startswith("$\\displaystyle") for m in at.markdown)


def cache_points(at) -> int:
    growth = next(f for t, f in figures(at).items() if t.startswith("KV-cache size"))
    return len(growth["data"][-1]["x"])


# ------------------------------------------------------------------ KV cache and generation


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED + USER)
def test_kv_cache_page_generates_step_by_step(name):
    at = open_page("pages/kv_cache.py", {"checkpoint": name})
    assert at.title[0].value == "KV cache and generation" and has_formula(at)
    assert cache_points(at) == 1 and any("Step 0" in m.value and "prefill" in m.value for m in at.markdown)
    for step in (1, 2):
        at.button(key="kv_next").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert cache_points(at) == step + 1
    assert any("same next token" in s.value for s in at.success)
    titles = figures(at)
    assert any(t.startswith("Decode, layer 0") for t in titles) and any(t.startswith("Layer 0 cache") for t in titles)


def test_kv_cache_page_reset_and_sampling():
    at = open_page("pages/kv_cache.py", {"checkpoint": SHIPPED[0] if SHIPPED else USER[1]})
    at.slider(key="kv_temperature").set_value(1.2).run()
    at.number_input(key="kv_top_k").set_value(3).run()
    at.button(key="kv_next").click().run()
    assert cache_points(at) == 2 and not at.exception
    at.button(key="kv_reset").click().run()
    assert cache_points(at) == 1 and not at.exception


def test_kv_cache_page_autoplay_steps_on_every_run():
    at = open_page("pages/kv_cache.py", {"checkpoint": SHIPPED[0] if SHIPPED else USER[1]})
    at.toggle(key="kv_autoplay").set_value(True).run()
    first = cache_points(at)
    at.run()
    assert cache_points(at) == first + 1 and not at.exception


def test_kv_cache_page_refuses_unreadable_input():
    at = open_page("pages/kv_cache.py", {"checkpoint": "user/tiny-dates", "text": "25 Décembre!"})
    assert at.error and not at.get("plotly_chart")


# ------------------------------------------------------------------ MHA vs GQA vs MQA


def test_compare_page_families_and_calculator():
    at = open_page("pages/compare_attention.py", {"checkpoint": SHIPPED[0] if SHIPPED else USER[1]})
    assert at.title[0].value == "MHA vs GQA vs MQA" and has_formula(at)
    families = [n for n in SHIPPED if n.startswith("reversal-")]
    titles = figures(at)
    for name in families:
        assert any(t.startswith(f"{name}: layer 0") for t in titles), name
    at.selectbox(key="calc_preset").set_value("Falcon-7B (MQA)").run()
    assert not at.exception
    assert at.number_input(key="calc_heads").value == 71 and at.number_input(key="calc_kv").value == 1
    values = {m.label: m.value for m in at.metric}  # 71 heads is prime: no grouped version between MHA and MQA
    assert values == {"MHA (71 K/V heads)": "1.1 GiB", "MQA (1 K/V head)": "16.0 MiB"}  # 2 x 32 x H_kv x 64 x 2048 x 2
    at.selectbox(key="calc_preset").set_value("Llama-2-70B (GQA)").run()
    assert [m.label for m in at.metric] == ["MHA (64 K/V heads)", "GQA (8 K/V heads)", "MQA (1 K/V head)"]


@pytest.mark.slow
def test_compare_page_evaluates_on_fresh_data():
    assert any(n.startswith("reversal-") for n in SHIPPED), "the reversal family is shipped"
    at = open_page("pages/compare_attention.py", {"checkpoint": "reversal-mha"})
    at.button(key="cmp_evaluate").click().run()
    assert not at.exception
    assert "Accuracy by position on fresh sequences" in figures(at)
    assert any("reversed half" in c.value for c in at.caption)


@pytest.mark.slow
def test_compare_page_shakespeare_family():
    assert {"shakespeare-mha", "shakespeare-mqa"} <= set(SHIPPED), "the Shakespeare pair is shipped"
    at = open_page("pages/compare_attention.py", {"checkpoint": "shakespeare-mha"})
    assert at.radio(key="cmp_family").value == "shakespeare"
    assert {"shakespeare-mha: layer 0", "shakespeare-mqa: layer 0"} <= {t[:24] for t in figures(at)}
    at.button(key="cmp_evaluate").click().run()
    assert not at.exception
    assert at.dataframe or any("not prepared" in e.value for e in at.error)  # no corpus: the message, no crash


# ------------------------------------------------------------------ Train


def set_settings(at, **values) -> None:
    for key, value in values.items():
        widget = at.toggle(key=key) if key in ("tr_no_mask", "tr_stop_learned") else at.number_input(key=key)
        widget.set_value(value)


def run_until_finished(at, job, timeout: float = 120) -> None:
    """Re-run the page (as its timed fragment would) until the job has ended, then once more."""
    deadline = time.monotonic() + timeout
    while not job.finished:
        assert time.monotonic() < deadline, "the run did not finish"
        time.sleep(0.5)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def markdown_text(at) -> str:
    return " ".join(m.value for m in at.markdown)


def test_train_page_refuses_bad_settings():
    at = open_page("pages/train.py")
    assert at.info and "Start training" in at.info[0].value
    set_settings(at, tr_d_model=30, tr_steps=100000)
    at.button(key=START).click().run()
    errors = " ".join(e.value for e in at.error)
    assert "Not started" in errors and "divisible" not in errors and "steps must be" in errors
    set_settings(at, tr_steps=100)
    at.button(key=START).click().run()
    assert "divisible" in " ".join(e.value for e in at.error)
    assert JOB_QUEUE.counts() == (0, 0) and "_tp_training_job" not in at.session_state


@pytest.mark.slow
def test_train_page_runs_to_completion_and_saves(user_models):
    at = open_page("pages/train.py")
    set_settings(at, tr_n=3, tr_vocab=4, tr_d_model=16, tr_n_heads=2, tr_n_kv_heads=1, tr_n_layers=1,
                 tr_steps=30, tr_batch=16, tr_no_mask=True, tr_stop_learned=False)
    at.button(key=START).click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Without the causal mask" in w.value and "does not exist yet" in w.value for w in at.warning)
    job = at.session_state["_tp_training_job"]
    run_until_finished(at, job)
    assert job.status == "done" and any("Done" in s.value for s in at.success)
    assert job.snapshot().latest.step == 30  # stop-when-learned off: every step runs
    assert {"Loss (cross-entropy of the training batch)", "Accuracy on fresh sequences"} <= set(figures(at))
    assert not figures(at)["Loss (cross-entropy of the training batch)"]["layout"].get("annotations")  # no floor
    assert any("Generating, as a user would" in i.value for i in at.info)  # what it does without the mask
    at.text_input(key="tr_save_name").set_value("from-apptest")
    at.button(key="FormSubmitter:save_model-Save").click().run()
    assert any("user/from-apptest" in s.value for s in at.success)
    assert load_checkpoint(user_models / "from-apptest").config.causal is False
    at.button(key="FormSubmitter:save_model-Save").click().run()  # same name again: asks first
    assert any("already have a model" in w.value for w in at.warning)
    at.checkbox(key="tr_replace").check()
    at.button(key="FormSubmitter:save_model-Save").click().run()
    assert any("user/from-apptest" in s.value for s in at.success)
    assert JOB_QUEUE.counts() == (0, 0)


@pytest.mark.slow
def test_train_page_defaults_stop_when_learned_with_the_numbers_as_text():
    at = open_page("pages/train.py")
    at.button(key=START).click().run()
    job = at.session_state["_tp_training_job"]
    run_until_finished(at, job)
    snap = job.snapshot()
    assert snap.learned is not None and snap.latest.step < 200
    assert any(re.fullmatch(r"Learned in \d+ steps, [0-9.]+ seconds\.", s.value) for s in at.success)
    text = markdown_text(at)
    assert re.search(r"second half (100|99\.\d)% · first half \d+% \(chance 10%\)", text), text
    assert "has learned to write 8 random symbols backwards" in text and "reverses `" in text
    floor = figures(at)["Loss (cross-entropy of the training batch)"]["layout"]["annotations"][0]["text"]
    assert "7/15 · ln 10 ≈ 1.07" in floor
    assert "learned at 99%" in json.dumps(figures(at)["Accuracy on fresh sequences"]["layout"])


def test_train_page_settings_live_in_the_url():
    at = open_page("pages/train.py", {"tr_task": "dates", "tr_steps": "800", "tr_lr": "abc", "tr_pos": "rope"})
    assert at.selectbox(key="tr_task").value == "dates" and at.number_input(key="tr_steps").value == 800
    assert at.selectbox(key="tr_pos").value == "rope" and at.number_input(key="tr_lr").value == 0.003
    assert any("tr_lr" in w.value and "not a number" in w.value for w in at.warning)
    assert "Train a model: dates" in at.title[0].value and "tr_n" not in [w.key for w in at.number_input]
    at = open_page("pages/train.py")
    at.selectbox(key="tr_task").set_value("dates").run()  # the form takes the dates defaults
    assert at.number_input(key="tr_steps").value == 600 and at.selectbox(key="tr_pos").value == "sinusoidal"
    assert "tr_steps" not in at.query_params  # a default stays out of the URL
    at.selectbox(key="tr_task").set_value("reversal").run()
    assert at.number_input(key="tr_steps").value == 200 and at.selectbox(key="tr_pos").value == "learned"
    at.selectbox(key="tr_attention").set_value("mla").run()  # outside the form: shows the latent size at once
    at.selectbox(key="tr_pos").set_value("rope")
    set_settings(at, tr_steps=10, tr_d_model=16, tr_n_layers=1, tr_kv_latent=8)
    at.button(key=START).click().run()
    assert not at.error, [e.value for e in at.error]
    job = at.session_state["_tp_training_job"]
    assert (job.settings.attention, job.settings.kv_latent_dim, job.settings.pos_encoding) == ("mla", 8, "rope")
    job.stop()
    assert job.wait(120)


def number_fields(at) -> set[str]:
    return {w.key for w in at.number_input}


def test_train_page_shows_the_mla_latent_size_for_mla_only():
    at = open_page("pages/train.py")
    assert at.selectbox(key="tr_attention").value == "standard"
    assert "tr_kv_latent" not in number_fields(at) and "tr_n_kv_heads" in number_fields(at)
    at.selectbox(key="tr_attention").set_value("mla").run()
    assert "tr_kv_latent" in number_fields(at) and "tr_n_kv_heads" not in number_fields(at)  # MLA has no K/V head count
    at.selectbox(key="tr_attention").set_value("standard").run()
    assert "tr_kv_latent" not in number_fields(at) and "tr_n_kv_heads" in number_fields(at) and not at.exception
    at = open_page("pages/train.py", {"tr_attention": "mla", "tr_kv_latent": "16"})  # a link opens MLA's form
    assert at.number_input(key="tr_kv_latent").value == 16 and "tr_n_kv_heads" not in number_fields(at)
    at = open_page("pages/train.py", {"tr_task": "dates", "tr_attention": "mla"})  # no MLA for the encoder-decoder
    assert "tr_attention" not in [w.key for w in at.selectbox] and "tr_kv_latent" not in number_fields(at)


@pytest.mark.slow
def test_train_page_trains_dates_and_shows_cross_attention():
    at = open_page("pages/train.py", {"tr_task": "dates"})
    set_settings(at, tr_d_model=16, tr_n_layers=1, tr_steps=20, tr_batch=16)
    at.button(key=START).click().run()
    assert not at.error, [e.value for e in at.error]
    job = at.session_state["_tp_training_job"]
    assert job.settings.task == "dates" and job.settings.stop_when_learned
    run_until_finished(at, job)
    text = markdown_text(at)
    assert re.search(r"exact match \d+(\.\d)?% · characters \d+(\.\d)?% \(greedy, 100 fresh dates", text), text
    assert "rewrites `" in text
    titles = set(figures(at))
    assert any(t.startswith("Cross-attention on a fixed example") for t in titles), titles
    assert "Accuracy by position (step 20)" not in titles


# ------------------------------------------------------------------ broken user checkpoints


def test_a_broken_user_checkpoint_is_named_not_located(tmp_path, monkeypatch):
    """Students read the model's name and the reason; the server's folders never appear."""
    store = tmp_path / "class-store"
    save_tiny_user_models(store)
    (store / "tiny-words" / "model.safetensors").write_bytes(b"not safetensors")  # the config is fine
    (store / "broken").mkdir()
    (store / "broken" / "config.json").write_text("{not json", encoding="utf-8")
    (store / "empty").mkdir()
    monkeypatch.setenv("TP_USER_MODELS", str(store))
    errors = {e.name: e.error for e in list_checkpoints() if e.source == "user"}
    assert errors["user/broken"].startswith("user/broken/config.json is not valid JSON"), errors
    assert errors["user/empty"] == "user/empty has no config.json: it is not a Transformer Playground checkpoint."
    assert errors["user/tiny-words"] is None and errors["user/tiny-dates"] is None  # listing reads configs only
    with pytest.raises(CheckpointError) as damaged:
        load_model("user/tiny-words")
    assert str(damaged.value).startswith("user/tiny-words/model.safetensors is truncated or not a safetensors file")

    from app_lib.uploads import UploadedBytes, install_upload

    with pytest.raises(CheckpointError) as upload:  # checked in a hidden staging folder of the store
        install_upload([UploadedBytes("config.json", (store / "tiny-dates" / "config.json").read_bytes()),
                        UploadedBytes("model.safetensors", (store / "tiny-dates" / "model.safetensors").read_bytes()[:-64])],
                       store, name="mine")
    assert str(upload.value).startswith("upload/model.safetensors is truncated or not a safetensors file")

    at = open_page("pages/my_models.py", {"checkpoint": "user/tiny-words"})
    shown = [e.value for e in at.error]
    assert any("user/tiny-words" in m and "not a safetensors file" in m for m in shown), shown  # the sidebar's
    assert any("user/broken/config.json is not valid JSON" in m for m in shown), shown  # the Your models page's
    for text in shown + [m.value for m in at.markdown]:
        assert str(tmp_path) not in text and str(store.resolve()) not in text, text
