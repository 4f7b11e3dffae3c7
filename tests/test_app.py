"""The app without a browser: app_lib's helpers, then every page through Streamlit's AppTest.

AppTest runs app.py in this process (no JavaScript): it checks that each page runs without an
exception element and draws the expected number of plotly charts, for every checkpoint present
(shipped ones plus two tiny user models, so the encoder-decoder and <unk> paths are always
covered), with the default input and with bad ones.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import save_tiny_user_models

from app_lib.checkpoints import CheckpointError, list_checkpoints, load_model, user_models_dir
from explain.attention import dot_product
from explain.embeddings import project_vocabulary
from explain.examples import default_text, task_examples
from explain.inputs import code_span, read_input
from explain.labels import token_labels
from explain.trace import prepare_trace
from model import load_checkpoint

pytestmark = pytest.mark.usefixtures("no_pages_folder_mode")  # see tests/conftest.py

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 60
PAGES = ["pages/embeddings.py", "pages/positional.py", "pages/attention_steps.py", "pages/heatmaps.py"]
FULL_CHARTS = {"pages/home.py": 0, "pages/embeddings.py": 3, "pages/positional.py": 5,
               "pages/attention_steps.py": 7, "pages/heatmaps.py": 2}
REFUSED_CHARTS = {"pages/home.py": 0, "pages/embeddings.py": 0, "pages/positional.py": 3,
                  "pages/attention_steps.py": 0, "pages/heatmaps.py": 0}
BAD_INPUTS = {
    "empty": "",
    "too_long": "1 2 3 4 5 6 7 8 9 " * 12 + "twenty five december two thousand and twenty three " * 3,
    "img_tag": "<img src=x onerror=alert(1)>",
    "script_end": "</script>",
    "unknown": "zebra qwxyz ü ☃ 25 décembre",
    "markdown": "$x$ **bold** `code` :red[x]",
}


def make_user_models(root: Path) -> Path:
    """Two tiny untrained user checkpoints (encoder-decoder dates; word GPT with <unk>), plus junk."""
    save_tiny_user_models(root)
    (root / "broken").mkdir()
    (root / "broken" / "config.json").write_text("{not json", encoding="utf-8")
    (root / ".half-saved.saving-1").mkdir()  # save_checkpoint's staging folder: never listed
    (root / "stray.pt").write_bytes(b"PK\x03\x04")
    return root


@pytest.fixture(scope="module")
def user_models(tmp_path_factory) -> Path:
    return make_user_models(tmp_path_factory.mktemp("user_models"))


@pytest.fixture(autouse=True)
def _user_models_env(user_models, monkeypatch):
    monkeypatch.setenv("TP_USER_MODELS", str(user_models))


def collect_checkpoints() -> tuple[list[str], list[str]]:
    """(every usable checkpoint, one per kind of tokenizer and architecture), for parametrising.

    Shipped checkpoints are whatever is in checkpoints/ now, plus the tiny user models
    (built once in a temporary folder with the same names the fixture uses).
    """
    old = os.environ.get("TP_USER_MODELS")
    root = Path(tempfile.mkdtemp(prefix="tp-user-models-"))
    os.environ["TP_USER_MODELS"] = str(make_user_models(root))
    try:
        names = [e.name for e in list_checkpoints() if e.error is None]
        seen, picked = set(), []
        for name in names:
            checkpoint = load_model(name)
            kind = (checkpoint.architecture, type(checkpoint.tokenizer).__name__)
            if kind not in seen:
                seen.add(kind)
                picked.append(name)
        return names, picked
    finally:
        os.environ.pop("TP_USER_MODELS") if old is None else os.environ.__setitem__("TP_USER_MODELS", old)
        shutil.rmtree(root, ignore_errors=True)


ALL_NAMES, REPRESENTATIVES = collect_checkpoints()


# ------------------------------------------------------------------ app_lib, without Streamlit running


def test_listing_marks_user_and_broken_checkpoints(user_models):
    entries = {e.name: e for e in list_checkpoints()}
    assert entries["user/tiny-dates"].source == "user" and entries["user/tiny-dates"].error is None
    assert entries["user/broken"].error and "config.json" in entries["user/broken"].error
    assert not any("half-saved" in name or "stray" in name for name in entries)
    shipped = [e for e in entries.values() if e.source == "shipped"]
    assert all(not e.name.startswith("user/") for e in shipped)
    assert user_models_dir() == user_models


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "user/../../etc", "nope", "user/broken"])
def test_load_model_accepts_only_listed_names(name):
    with pytest.raises(CheckpointError):
        load_model(name)


def test_load_model_by_name_or_path_is_cached(user_models):
    first = load_model("user/tiny-words")
    assert load_model(user_models / "tiny-words") is first
    assert first.tokenizer.vocab_size > 10


def test_input_notes():
    dates = load_model("user/tiny-dates")
    words = load_model("user/tiny-words")
    assert not read_input(dates, "   ").ok
    refused = read_input(dates, "25 Décembre 2023!")
    assert not refused.ok and "'é'" in refused.notes[0].message and "'!'" in refused.notes[0].message
    garbage = read_input(dates, "hello world")
    assert garbage.ok and "garbage" in garbage.notes[0].message
    assert read_input(dates, "25 December 2023").notes == ()  # lower-cased, one of the formats
    assert "outside" in read_input(dates, "25 december 2150").notes[0].message
    unknown = read_input(words, "to be or zebra")
    assert unknown.ok and "zebra" in unknown.notes[0].message and "<unk>" in unknown.notes[0].message
    long = read_input(words, "to be " * 40)
    assert len(long.ids) == 24 and "first 24" in long.notes[-1].message


def test_code_span_keeps_any_text_literal():
    assert code_span("a`b") == "``a`b``"
    assert code_span("`x`") == "`` `x` ``"
    assert code_span("$x$\nnext") == "`$x$ next`"


def test_dates_trace_decodes_with_its_own_output():
    prepared = prepare_trace(load_model("user/tiny-dates"), "25 december 2023")
    assert prepared.ok and prepared.target_tokens[0] == "<s>"
    assert "</s>" not in prepared.target_tokens[1:]
    cross = prepared.attention("cross")[0]
    assert tuple(cross.weights.shape[-2:]) == (len(prepared.target_tokens), len(prepared.tokens))
    x_query, x_kv = prepared.attention_inputs("cross", 1)
    assert x_query.shape[1] == len(prepared.target_tokens) and x_kv.shape[1] == len(prepared.tokens)


def test_reversal_trace_includes_the_answer():
    reversal = [n for n in ALL_NAMES if load_model(n).meta.get("task", {}).get("name") == "reversal"]
    assert reversal, "a reversal checkpoint is shipped"
    checkpoint = load_model(reversal[0])
    n = checkpoint.task.n
    prepared = prepare_trace(checkpoint, default_text(checkpoint))
    assert len(prepared.tokens) == 2 * n - 1 and prepared.prompt_length == n
    assert prepared.answer == checkpoint.run(default_text(checkpoint))
    short = prepare_trace(checkpoint, "1 2 3")
    assert short.ok and len(short.tokens) == 3 and short.answer is None and "exactly" in short.notes[0].message


def test_dot_product_matches_the_traced_score():
    prepared = prepare_trace(load_model("user/tiny-words"), "to be or not")
    att = prepared.attention("self")[1]
    dp = dot_product(att, head=3, query=4, key=2)
    assert dp.products.sum() == pytest.approx(dp.raw, abs=1e-5)
    assert dp.scaled == pytest.approx(dp.raw / dp.d_head ** 0.5, abs=1e-5)
    assert dp.kv_head == 0 and dp.allowed
    assert not dot_product(att, 0, 1, 3).allowed


def test_labels_and_projection():
    assert token_labels(["the", " ", "the", "\n"]) == ["0:the", "1:␣", "2:the", "3:⏎"]
    checkpoint = load_model("user/tiny-words")
    projection = project_vocabulary(checkpoint)
    assert projection.coords.shape == (checkpoint.tokenizer.vocab_size, 2)
    assert projection.explained[0] >= projection.explained[1] > 0


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_checkpoint_has_examples_it_can_read(name):
    checkpoint = load_model(name)
    for example in task_examples(checkpoint):
        assert read_input(checkpoint, example).ok, example


# ------------------------------------------------------------------ pages through AppTest


def app_at(query: dict[str, str] | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    return at.run()


def expected_charts(page: str, name: str, text: str) -> int:
    checkpoint = load_model(name)
    if not read_input(checkpoint, text).ok:
        return REFUSED_CHARTS[page]
    config = checkpoint.config
    no_position = page == "pages/positional.py" and config.pos_encoding == "none"
    rope = config.pos_encoding == "rope"  # positional: rotation and score-by-distance instead of the own table
    steps_extra = (rope + (config.attention_variant == "MLA")) if page == "pages/attention_steps.py" else 0
    return FULL_CHARTS[page] - no_position + (rope and page == "pages/positional.py") + steps_extra


def run_pages(name: str, text: str | None) -> None:
    """Open the app on (checkpoint, text) and visit every page, checking exceptions and charts."""
    query = {"checkpoint": name} | ({} if text is None else {"text": text})
    at = app_at(query)
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="checkpoint").value == name
    shown = at.text_input(key="text").value
    expected_text = default_text(load_model(name)) if text is None else text
    assert shown == expected_text
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert len(at.get("plotly_chart")) == expected_charts(page, name, expected_text), page
        if not read_input(load_model(name), expected_text).ok:
            assert at.error, page


def test_home_lists_the_models_and_the_tour():
    at = app_at()
    assert not at.exception
    assert at.title[0].value == "Transformer Playground"
    assert at.get("latex") and len(at.get("plotly_chart")) == 0
    tables = [m.value for m in at.main.markdown if m.value.startswith("| checkpoint | source |")]
    table = re.sub(r"\\(.)", r"\1", tables[0])  # the models table, unescaped
    assert "| user/tiny-dates | user |" in table and "| user/broken | user |" in table
    assert any("cannot be opened" in e.label for e in at.sidebar.expander)


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_page_for_every_checkpoint(name):
    run_pages(name, None)


@pytest.mark.slow
@pytest.mark.parametrize("bad", list(BAD_INPUTS))
@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_every_page_with_bad_input(name, bad):
    run_pages(name, BAD_INPUTS[bad])


def test_a_path_as_checkpoint_gets_a_message_and_the_default_view():
    at = app_at({"checkpoint": "../../etc/passwd"})
    assert not at.exception
    assert at.selectbox(key="checkpoint").value == ALL_NAMES[0]
    assert any("not one of the choices" in w.value and "etc/passwd" in w.value for w in at.sidebar.warning)
    at.switch_page("pages/heatmaps.py").run()
    assert not at.exception and len(at.get("plotly_chart")) == FULL_CHARTS["pages/heatmaps.py"]


def test_link_opens_layer_head_and_query():
    at = app_at({"checkpoint": "user/tiny-words", "layer": "1", "head": "2", "query": "3", "key": "1",
                 "text": "to be or not"})
    at.switch_page("pages/attention_steps.py").run()
    assert not at.exception
    values = {key: at.selectbox(key=key).value for key in ("layer", "head", "query", "key")}
    assert values == {"layer": 1, "head": 2, "query": 3, "key": 1}
    assert any("3:" in c.value and "1:" in c.value for c in at.caption)


def test_switching_checkpoint_resets_a_choice_the_new_model_lacks_without_a_link_warning():
    """Layer 2 picked on shakespeare-mha (3 layers), then reversal-mha (2 layers): reset quietly."""
    at = app_at({"checkpoint": "shakespeare-mha"})
    at.switch_page("pages/heatmaps.py").run()
    at.selectbox(key="layer").set_value(2).run()
    at.selectbox(key="checkpoint").set_value("reversal-mha").run()
    assert not at.exception and at.selectbox(key="layer").value == 0
    assert not [w.value for w in at.warning if "layer" in w.value]


def test_out_of_range_layer_falls_back_with_a_note():
    at = app_at({"checkpoint": "user/tiny-words", "layer": "9"})
    at.switch_page("pages/heatmaps.py").run()
    assert not at.exception and at.selectbox(key="layer").value == 0
    assert any("layer" in w.value for w in at.warning)


def test_changing_checkpoint_resets_the_input_and_examples_fill_it():
    at = app_at({"checkpoint": "user/tiny-words"})
    at.selectbox(key="checkpoint").set_value("user/tiny-dates").run()
    assert at.text_input(key="text").value == "25 december 2023"
    picker = at.selectbox(key="example::user/tiny-dates")
    picker.set_value(picker.options[2]).run()
    assert at.text_input(key="text").value == picker.options[2] and not at.exception


def test_select_checkpoint_from_another_page_callback():
    from streamlit.testing.v1 import AppTest

    def app():
        import streamlit as st

        from app_lib.sidebar import render_sidebar, select_checkpoint

        st.button("open", key="open", on_click=select_checkpoint, args=("user/tiny-dates",))
        st.write(render_sidebar().entry.name)

    at = AppTest.from_function(app, default_timeout=TIMEOUT).run()
    at.button(key="open").click().run()
    assert not at.exception
    assert at.selectbox(key="checkpoint").value == "user/tiny-dates"
    assert at.text_input(key="text").value == "25 december 2023"


def test_encoder_decoder_switches_between_attention_kinds():
    at = app_at({"checkpoint": "user/tiny-dates"})
    at.switch_page("pages/attention_steps.py").run()
    assert at.radio(key="attention").options == ["encoder", "decoder", "cross"]
    for kind in ("decoder", "cross"):
        at.radio(key="attention").set_value(kind).run()
        assert not at.exception and len(at.get("plotly_chart")) == FULL_CHARTS["pages/attention_steps.py"]
    at.switch_page("pages/heatmaps.py").run()
    at.toggle(key="all_layers").set_value(True).run()
    assert not at.exception and len(at.get("plotly_chart")) == FULL_CHARTS["pages/heatmaps.py"] + 1
    assert len(at.get("iframe")) == 2 and len(at.get("download_button")) == 2


def test_a_checkpoint_that_fails_to_load_shows_the_error(user_models, tmp_path, monkeypatch):
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for name in ("config.json", "model.safetensors"):
        (damaged / name).write_bytes((user_models / "tiny-words" / name).read_bytes())
    (damaged / "model.safetensors").write_bytes(b"truncated")
    monkeypatch.setenv("TP_USER_MODELS", str(tmp_path))
    at = app_at({"checkpoint": "user/damaged"})
    assert not at.exception
    assert any("could not be loaded" in e.value for e in at.sidebar.error)
    assert load_checkpoint(user_models / "tiny-words").tokenizer is not None


def test_models_table_shows_any_name_literally():
    """A user's folder name with Markdown, Streamlit markup or HTML stays one cell of plain text."""
    from app_lib.markdown import escape_markdown, markdown_table

    @dataclasses.dataclass(frozen=True)
    class Row:
        checkpoint: str = dataclasses.field(metadata={"column": "checkpoint"})
        source: str = ""
        extra: str = dataclasses.field(default="", metadata={"column": "ex|tra"})

    hostile = "a|b $x$ :red[y] <b>bold</b> **z** `c`\nnext"
    table = markdown_table([Row(hostile, "user"), Row("ok", extra="e")])
    header, rule, first, second = table.split("\n")
    assert header == "| checkpoint | source | ex\\|tra |" and rule == "| --- | --- | --- |"
    unescaped_pipes = re.findall(r"(?<!\\)\|", first)
    assert len(unescaped_pipes) == 4  # three cells, whatever the name holds
    assert not re.search(r"(?<!\\)[<>$`*\[\]:]", first)  # every markup character is escaped
    assert re.sub(r"\\(.)", r"\1", escape_markdown(hostile)) == hostile.replace("\n", " ")
    assert second == "| ok |  | e |"


def test_the_heatmaps_page_sends_small_bertviz_documents():
    """Each bertviz iframe links the libraries the app serves (static/bertviz/) instead of inlining them."""
    at = app_at()
    for head in (0, 1):
        at.switch_page("pages/heatmaps.py").run()
        at.selectbox(key="head").set_value(head).run()
        frames = at.get("iframe")
        assert not at.exception and len(frames) == 2
        for frame in frames:
            document = frame.proto.srcdoc
            assert len(document.encode()) <= 60_000, f"an in-page bertviz document of {len(document):,} characters"
            assert '<script src="/app/static/bertviz/require-2.3.6.js"' in document


def test_the_model_view_is_built_once_per_input():
    """The model view does not depend on the layer or head; the head view opens on them."""
    from app_lib.bertviz_views import bertviz_views

    name = list_checkpoints()[0].name
    text = default_text(load_model(name))
    first, other_head, other_layer = (bertviz_views(name, text, 0, 0), bertviz_views(name, text, 0, 1),
                                      bertviz_views(name, text, 1, 0))
    assert first.model_html == other_head.model_html == other_layer.model_html
    assert len({first.head_html, other_head.head_html, other_layer.head_html}) == 3
    assert "layer 0, head 1 selected" in other_head.head_html
