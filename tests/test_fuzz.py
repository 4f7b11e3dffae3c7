"""Property-based tests with hypothesis: untrusted text never crashes the app and is never rendered as markup.

Random text (any non-surrogate Unicode, control characters, NUL, RTL marks, very long strings, HTML,
<script>, Markdown such as `$x$ **b** :red[x]`) goes to:

- every tokenizer, built as the shipped checkpoints build them (config.json, model/tasks);
- the tracing API: explain.trace.prepare_trace on the shipped checkpoints and on tiny models
  (tests/conftest.py), and model.trace directly;
- every figure builder in viz/ (plotly) and the bertviz HTML documents.

The only exceptions allowed are the documented "clear message" ones: a tokenizer without <unk>
raises ValueError naming what it does not know (read_input turns that into a Note, so
prepare_trace itself never raises); figure builders raise ValueError for duplicate labels;
model.trace raises ValueError for ids it cannot read. Markup: plotly renders a few HTML tags in
any label, title or hover text, so no user text may reach a figure with a raw '<'; Markdown notes
keep user text inside one code span and on one line; bertviz documents keep it escaped.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from conftest import tiny_gpt, tiny_transformer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app_lib.bertviz_views import build_views
from explain.attention import dot_product
from explain.cache import CacheCurve, CalculatorResult
from explain.compare import FamilyQuality, ModelQuality
from explain.inputs import code_span, listed, read_input
from explain.labels import display_token, token_labels
from explain.trace import prepare_trace
from model import LoadedCheckpoint, load_checkpoint, trace
from model.decode_speed import SpeedPoint
from model.tasks.dates import DatesTask
from model.tasks.reversal import ReversalTask
from model.tokenizers import CharTokenizer, SymbolTokenizer, WordTokenizer, split_words, tokenizer_from_dict
from viz import figures, figures_compare, figures_embeddings, figures_generation, figures_training, panels
from viz.bertviz_html import head_view_html, head_view_html_encoder_decoder, model_view_html

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see tests/conftest.py

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.parent for p in (ROOT / "checkpoints").glob("*/config.json"))

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(FUZZ, max_examples=25)

# Fragments that break naive escaping, in every layer: HTML, <script>, plotly tags, Markdown, LaTeX,
# Streamlit's :colour[] directives, control characters, bidi overrides, line endings CommonMark knows.
NASTY = [
    "<script>alert(1)</script>", "</script>", "<!--", "-->", "<b>", "</b>", "<br>", "<i>x</i>", "<sub>",
    "<img src=x onerror=alert(1)>", "<a href='javascript:alert(1)'>x</a>", "<s>", "</s>", "<pad>", "<unk>",
    "&lt;", "&amp;", "&#60;", "&nbsp;", "$x$", "$$", "**b**", "_i_", ":red[x]", ":material/home:", "`", "```",
    "\\", "[x](http://e.com)", "# h", "- ", "| a |", "\x00", "\r", "\n", "\r\n", "\t", "\x0b", "\x1c", "\x85",
    "\u2028", "\u2029", "\u200b", "\u200f", "\u202e", "\ufeff", "\u0301", "İ", "ß", "ﬁ", "👩‍👩‍👧",
    "%2e%2e/",
    "../../etc/passwd", "}; // HACK", "\"'", "1 2 3 4 5 6 7 8", "25 december 2023", "to be or not", " ",
]
ANY_CHAR = st.characters(exclude_categories=("Cs",))  # every code point a Python str from a browser can hold
fragment = st.one_of(st.sampled_from(NASTY), st.text(ANY_CHAR, max_size=6))
texts = st.one_of(
    st.text(ANY_CHAR, max_size=80),
    st.lists(fragment, max_size=14).map("".join),
    st.builds(lambda piece, n: piece * n, st.lists(fragment, min_size=1, max_size=3).map("".join),
              st.integers(100, 3000)),  # very long
)
labels_lists = st.lists(st.one_of(st.sampled_from(NASTY), st.text(ANY_CHAR, max_size=12)), min_size=1, max_size=6)


# ------------------------------------------------------------------ helpers: what counts as markup


def rendered_strings(value, key: str = "") -> list[str]:
    """Every string of a plotly figure's JSON that plotly may show as text (templates are ours)."""
    if isinstance(value, str):
        return [] if key in ("hovertemplate", "texttemplate") else [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in rendered_strings(v, k)]
    if isinstance(value, (list, tuple, np.ndarray)):
        return [s for v in value for s in rendered_strings(v, key)]
    return []


def assert_no_plotly_markup(fig: go.Figure) -> None:
    """No raw '<' or '>' anywhere plotly renders text: every tag-like piece is escaped (&lt;...)."""
    for text in rendered_strings(fig.to_plotly_json()):
        assert "<" not in text and ">" not in text, f"raw markup reaches plotly: {text!r}"


def code_spans(markdown: str) -> tuple[list[str], str]:
    """CommonMark code spans of one line of Markdown: (their contents, the text outside them)."""
    spans, outside, i = [], [], 0
    while i < len(markdown):
        if markdown[i] != "`":
            outside.append(markdown[i])
            i += 1
            continue
        run = len(markdown[i:]) - len(markdown[i:].lstrip("`"))
        closing = re.compile(rf"(?<!`)`{{{run}}}(?!`)").search(markdown, i + run)
        if closing is None:  # no closing run of the same length: the backticks are literal
            outside.append(markdown[i : i + run])
            i += run
            continue
        content = markdown[i + run : closing.start()]
        if content.startswith(" ") and content.endswith(" ") and content.strip(" "):
            content = content[1:-1]
        spans.append(content)
        i = closing.end()
    return spans, "".join(outside)


def assert_markdown_safe(message: str) -> None:
    """A note stays one paragraph, and outside its code spans nothing Markdown or HTML would interpret."""
    assert not re.search(r"[\r\n]", message), f"a line ending lets user text start a new block: {message!r}"
    _, outside = code_spans(message)
    assert not re.search(r"[<>$`\[\]\\*]", outside), f"markup outside code spans: {outside!r}"


def markup_of(document: str) -> str:
    """The document without its inline scripts' bodies."""
    return re.sub(r"<script>.*?</script>", "<script></script>", document, flags=re.DOTALL)


HEAD_VIEW_SCRIPTS = 5
MODEL_VIEW_SCRIPTS = 6  # the model view adds viz.bertviz_html.FIT_TO_WIDTH


def assert_bertviz_safe(document: str, neutral: str, title: str | None, scripts: int) -> dict:
    """`scripts` inline scripts, as built; the markup is the same as with harmless tokens ("xxx" of the same lengths),
    so no token leaks into HTML; the title is escaped; the params decode back as JSON data. Returns the params."""
    markup = markup_of(document)
    assert markup.count("<script></script>") == scripts
    assert len(re.findall(r"<script", markup, re.IGNORECASE)) == scripts
    assert markup == markup_of(neutral), "the tokens changed the HTML outside the scripts"
    if title:
        assert f"<title>{html.escape(title)}</title>" in document and f"<h3>{html.escape(title)}</h3>" in document
    start = document.index("const params = ") + len("const params = ")
    params, end = json.JSONDecoder().raw_decode(document, start)
    assert document[end:].startswith(";")
    return params


def neutral(tokens: list[str]) -> list[str]:
    return ["x" * len(t) for t in tokens]


# ------------------------------------------------------------------ tokenizers


def shipped_tokenizers() -> dict[str, object]:
    """One tokenizer per distinct description: the shipped configs' and the tasks' own."""
    found = {}
    for path in SHIPPED:
        description = json.loads((path / "config.json").read_text(encoding="utf-8"))["tokenizer"]
        found.setdefault(json.dumps(description, sort_keys=True), (path.name, tokenizer_from_dict(description)))
    for name, tokenizer in [("dates-task", DatesTask().make_tokenizer()),
                            ("reversal-task", ReversalTask(n=8, vocab=10).make_tokenizer()),
                            ("words-built", WordTokenizer.build("To be, or not:\n\nthat is <the> question.", 20))]:
        found.setdefault(json.dumps(tokenizer.to_dict(), sort_keys=True), (name, tokenizer))
    return dict(found.values())


TOKENIZERS = shipped_tokenizers()


def normalised_words(text: str) -> str:
    """What split_words keeps of text: every non-space character, whitespace runs as one space or newline."""
    return re.sub(r"\s+", lambda m: "\n" if re.search(r"[\r\n]", m.group()) else " ", text)


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
@FUZZ
@given(text=texts)
def test_tokenizers_encode_or_name_what_they_do_not_know(name, text):
    tokenizer = TOKENIZERS[name]
    pieces, unknown = tokenizer.pieces(text), tokenizer.unknown_in(text)
    if unknown and tokenizer.unk_id is None:
        with pytest.raises(ValueError, match=re.escape(repr(unknown[0]))):
            tokenizer.encode(text)
        return
    ids = tokenizer.encode(text)
    assert len(ids) == len(pieces) and all(0 <= i < tokenizer.vocab_size for i in ids)
    assert tokenizer.tokenize(text) == [tokenizer.id_to_token(i) for i in ids]
    decoded = tokenizer.decode(ids, skip_specials=False)
    if isinstance(tokenizer, SymbolTokenizer):
        assert decoded == " ".join(text.split())
    elif isinstance(tokenizer, CharTokenizer):
        assert decoded == text
    else:
        assert "".join(pieces) == normalised_words(text)
        assert decoded == "".join(p if p not in unknown else tokenizer.unk for p in pieces)


@FUZZ
@given(text=texts, size=st.integers(2, 60))
def test_word_tokenizer_built_from_any_text_round_trips(text, size):
    tokenizer = WordTokenizer.build(text, size)
    rebuilt = tokenizer_from_dict(json.loads(json.dumps(tokenizer.to_dict())))
    assert rebuilt == tokenizer and rebuilt.encode(text) == tokenizer.encode(text)
    assert all(p and (p in (" ", "\n") or not p.isspace()) for p in split_words(text))


@FUZZ
@given(tokens=st.lists(st.text(ANY_CHAR, min_size=1, max_size=4), min_size=1, max_size=8, unique=True))
def test_tokenizer_descriptions_from_any_strings_load_or_raise_value_error(tokens):
    for description in ({"type": "symbol", "symbols": tokens}, {"type": "char", "chars": tokens,
                        "specials": ["<pad>", "<s>", "</s>"]}, {"type": "word", "tokens": tokens, "unk": "<unk>"}):
        try:
            tokenizer = tokenizer_from_dict(description)
        except ValueError as error:
            assert str(error)
            continue
        assert tokenizer_from_dict(tokenizer.to_dict()) == tokenizer


# ------------------------------------------------------------------ Markdown notes


@FUZZ
@given(text=texts)
def test_code_span_holds_any_text_on_one_line(text):
    span = code_span(text)
    assert_markdown_safe(span)
    contents, outside = code_spans(span)
    assert outside == "" and len(contents) == 1
    assert contents[0].strip(" ") == re.sub(r"\r\n?|\n", " ", text).strip(" ")


@FUZZ
@given(pieces=st.lists(texts, max_size=20))
def test_listed_pieces_are_markdown_safe(pieces):
    assert_markdown_safe(f"Not among them: {listed(pieces)}.")


# ------------------------------------------------------------------ the tracing API


def readable_texts(tokenizer) -> st.SearchStrategy[str]:
    """Text the tokenizer can read (so traces happen): its own pieces, the nasty fragments it knows,
    and for symbols any Unicode whitespace between them."""
    known = [t for i, t in enumerate(tokenizer.tokens) if i not in tokenizer.special_ids and i != tokenizer.unk_id]
    nasty = [f for f in NASTY if tokenizer.unk_id is not None or (f.strip() and not tokenizer.unknown_in(f))]
    piece = st.one_of(st.sampled_from(known), *([st.sampled_from(nasty)] if nasty else []))
    if isinstance(tokenizer, SymbolTokenizer):
        gaps = st.sampled_from([" ", "  ", "\t", "\n", "\r\n", "\u3000", "\x1c", "\u2028", "\x0b"])
        return st.lists(st.tuples(piece, gaps), min_size=1, max_size=20).map(lambda ps: "".join(a + b for a, b in ps))
    return st.lists(piece, min_size=1, max_size=40).map("".join)


def tiny_checkpoints() -> dict[str, LoadedCheckpoint]:
    """A tiny GPT (symbols, no task: continues the text) and a tiny encoder-decoder (characters, no unk)."""
    torch.manual_seed(0)
    gpt = tiny_gpt(n_kv_heads=2)
    seq2seq = tiny_transformer(n_kv_heads=1, src_vocab_size=11, tgt_vocab_size=11)
    return {"tiny-gpt": LoadedCheckpoint(gpt, SymbolTokenizer.of_size(13), gpt.config),
            "tiny-seq2seq": LoadedCheckpoint(seq2seq, CharTokenizer("ab <>&$`"), seq2seq.config)}


@pytest.fixture(scope="module")
def checkpoints() -> dict[str, LoadedCheckpoint]:
    loaded = {path.name: load_checkpoint(path) for path in SHIPPED}
    return tiny_checkpoints() | loaded


def assert_prepared_is_sound(prepared, checkpoint: LoadedCheckpoint) -> None:
    """Notes are safe Markdown; a refused input says so; a trace has unique labels and proper weights."""
    for note in prepared.notes:
        assert note.level in ("info", "warning", "error")
        assert_markdown_safe(note.message)
    if not prepared.ok:
        assert any(note.level == "error" for note in prepared.notes)
        return
    for kind in prepared.kinds:
        q_labels, k_labels = prepared.query_labels(kind), prepared.key_labels(kind)
        assert len(set(q_labels)) == len(q_labels) <= checkpoint.config.max_len
        assert not any(re.search(r"[\r\n]", label) for label in q_labels + k_labels)
        for att in prepared.attention(kind):
            assert tuple(att.weights.shape[-2:]) == (len(q_labels), len(k_labels))
            assert torch.isfinite(att.weights).all()
            assert torch.allclose(att.weights.sum(-1), torch.ones(()), atol=1e-5)
    assert len(prepared.token_table()) == len(prepared.tokens)


@pytest.mark.parametrize("name", [p.name for p in SHIPPED] + ["tiny-gpt", "tiny-seq2seq"])
@FEW
@given(data=st.data())
def test_prepare_trace_never_raises_and_says_why(checkpoints, name, data):
    checkpoint = checkpoints[name]
    text = data.draw(st.one_of(readable_texts(checkpoint.tokenizer), texts), label="text")
    prepared = prepare_trace(checkpoint, text)
    assert_prepared_is_sound(prepared, checkpoint)
    model_input = read_input(checkpoint, text)
    assert model_input.ok == prepared.ok
    if model_input.ok:
        att = prepared.attention(prepared.kinds[0])[-1]
        dp = dot_product(att, att.weights.shape[1] - 1, len(prepared.query_labels(prepared.kinds[0])) - 1, 0)
        assert np.isclose(dp.products.sum(), dp.raw, atol=1e-4)


@FUZZ
@given(ids=st.lists(st.integers(-3, 16), max_size=30))
def test_model_trace_reads_valid_ids_and_refuses_others_clearly(ids):
    model = tiny_gpt(n_kv_heads=1)  # vocab 13, max_len 24
    if ids and all(0 <= i < 13 for i in ids) and len(ids) <= 24:  # empty ids are refused too
        record = trace(model, torch.tensor([ids], dtype=torch.long))
        assert record.decoder.layers[0].self_attention.weights.shape[-1] == len(ids)
        return
    with pytest.raises(ValueError):
        trace(model, torch.tensor([ids], dtype=torch.long))


# ------------------------------------------------------------------ plotly figures


def unique_labels(raw: list[str], length: int) -> list[str]:
    """length labels "i:text" from the fuzzed strings, as explain.labels.token_labels makes them."""
    return [f"{i}:{raw[i % len(raw)]}" for i in range(length)]


def fake_attention(t_q: int, t_k: int, heads: int = 4, kv_heads: int = 2, d_head: int = 3) -> SimpleNamespace:
    """An AttentionTrace-shaped record (B = 1) with a causal mask, for the figure builders."""
    g = torch.Generator().manual_seed(t_q * 31 + t_k)
    mask = torch.ones(t_q, t_k, dtype=torch.bool).tril()[None, None]  # (1, 1, T_q, T_k)
    scores = torch.randn(1, heads, t_q, t_k, generator=g).masked_fill(~mask, float("-inf"))
    return SimpleNamespace(
        q=torch.randn(1, heads, t_q, d_head, generator=g), k=torch.randn(1, kv_heads, t_k, d_head, generator=g),
        v=torch.randn(1, kv_heads, t_k, d_head, generator=g), raw_scores=scores, scaled_scores=scores, mask=mask,
        weights=scores.softmax(-1), head_outputs=torch.randn(1, heads, t_q, d_head, generator=g),
        concatenated=torch.randn(1, t_q, heads * d_head, generator=g), output=torch.randn(1, t_q, 5, generator=g))


def attention_figures(labels: list[str], title: str) -> list[go.Figure]:
    att = fake_attention(len(labels), len(labels))
    x = torch.randn(1, len(labels), 5)
    return [
        figures.plot_head_grid(att, labels, labels, title, highlight_head=1),
        figures.plot_layer_grid([att, att], labels, labels, title, layer_names=[title, title + "!"]),
        figures.plot_attention_input(x, x, labels, labels, cross=True),
        figures.plot_qkv(att, 3, labels, labels, 0, 0),
        figures.plot_scores(att, 1, labels, labels, 0, 0),
        figures.plot_attention_weights(att, 0, labels, labels, title, 0, 0),
        figures.plot_head_output(att, 2, labels, 0),
        figures.plot_concat_output(att, labels, 0),
        figures.plot_dot_product(np.ones(3), np.arange(3.0), title),
        panels.plot_matrix(panels.Panel(np.eye(len(labels)), title, labels, labels), title),
        figures_compare.plot_grouped_heads(att, labels, title),
    ]


def other_figures(labels: list[str], title: str) -> list[go.Figure]:
    n = len(labels)
    table = torch.randn(n, 6)
    point = SpeedPoint(variant=title, n_kv_heads=1, context=8, batch=1, tokens_per_s=10.0, cache_bytes=1024)
    event = SimpleNamespace(step=1, loss=1.0, tokens_per_s=5.0,
                            metrics={"first_half_accuracy": 0.1, "second_half_accuracy": 0.9})
    return [
        figures_embeddings.plot_token_embeddings(table, labels, title),
        figures_embeddings.plot_cosine_similarity(table, labels),
        figures_embeddings.plot_vocab_scatter(torch.randn(n, 2), labels, (0.5, 0.2), highlight=labels[:1]),
        figures_embeddings.plot_positional_matrix(table, title),
        figures_embeddings.plot_positional_curves(table, [0, 1]),
        figures_embeddings.plot_position_similarity(table, title),
        figures_embeddings.plot_embedding_sum(table, table, table, labels, title),
        figures_generation.plot_next_token(torch.rand(n).softmax(0), labels, 0, title=title),
        figures_generation.plot_prefill_scores(torch.randn(2, n, n), torch.ones(n, n).tril(), labels, 0),
        figures_generation.plot_decode_row(torch.rand(2, 1, n), labels, labels[-1], 0, kind=title),
        figures_generation.plot_cache_tensors(torch.randn(2, n, 3), torch.randn(2, n, 3), labels, 0),
        figures_generation.plot_cache_growth([0, 1], [10, 20], [CacheCurve(title, 2, (10, 20))], title),
        figures_generation.plot_step_times([1, 2], [1.0, 1.0], [2.0, 3.0]),
        figures_compare.plot_cache_sizes([CalculatorResult(title, 4, 10, 1), CalculatorResult(title + " 2", 1, 5, 1)], 4096),
        figures_compare.plot_decode_speed([point]),
        figures_compare.plot_position_accuracy(FamilyQuality("reversal", (title,), 0, (ModelQuality(title, accuracy_by_position=(0.1,) * 3),), 2, 0.1)),
        figures_training.plot_loss([event]),
        figures_training.plot_half_accuracy([event], 0.1),
        figures_training.plot_accuracy_by_position([0.5] * 3, 2, 0.1, 3),  # n = 2: 2n - 1 positions
        figures_training.plot_throughput([event]),
        figures_training.plot_training_attention(torch.rand(2, 2, n, n), labels, 3),
    ]


@FEW
@given(raw=labels_lists, length=st.integers(1, 6), title=st.one_of(st.sampled_from(NASTY), texts))
def test_attention_figures_escape_every_label_and_title(raw, length, title):
    labels = unique_labels(raw, length)
    built = attention_figures(labels, title)
    for fig in built:
        assert_no_plotly_markup(fig)
    shown = next(t for t in built[5].data if t.name != "masked")
    assert [html.unescape(y) for y in shown.y] == labels  # escaped, so shown exactly as typed


@FEW
@given(raw=labels_lists, length=st.integers(2, 6), title=st.one_of(st.sampled_from(NASTY), texts))
def test_embedding_generation_compare_and_training_figures_escape_text(raw, length, title):
    labels = unique_labels(raw, length)
    for fig in other_figures(labels, title):
        assert_no_plotly_markup(fig)


@FUZZ
@given(raw=labels_lists)
def test_vocab_scatter_of_a_large_vocabulary_escapes_tokens(raw):
    tokens = [f"{t}{i}" for i, t in enumerate(raw * (100 // len(raw) + 1))][:100]  # > 80: WebGL, no text
    fig = figures_embeddings.plot_vocab_scatter(np.zeros((100, 2)), tokens, (0.5, 0.1), highlight=tokens[:3])
    assert_no_plotly_markup(fig)


@FUZZ
@given(raw=labels_lists)
def test_duplicate_labels_are_refused_with_a_clear_message(raw):
    labels = [raw[0], raw[0]]
    with pytest.raises(ValueError, match="unique"):
        panels.plotly_labels(labels)


# ------------------------------------------------------------------ traces all the way to figures


@pytest.mark.parametrize("name", ["reversal-mha", "dates", "shakespeare-mqa", "tiny-seq2seq"])
@settings(FUZZ, max_examples=12)
@given(data=st.data())
def test_traced_user_text_reaches_figures_and_bertviz_escaped(checkpoints, name, data):
    checkpoint = checkpoints[name]
    text = data.draw(st.one_of(readable_texts(checkpoint.tokenizer), texts), label="text")
    prepared = prepare_trace(checkpoint, text)
    if not prepared.ok:
        assert any(note.level == "error" for note in read_input(checkpoint, text).notes)
        return
    kind = prepared.kinds[-1]
    att, q_labels, k_labels = prepared.attention(kind)[0], prepared.query_labels(kind), prepared.key_labels(kind)
    assert_no_plotly_markup(figures.plot_head_grid(att, q_labels, k_labels, text, highlight_head=0))
    assert_no_plotly_markup(figures.plot_scores(att, 0, q_labels, k_labels, len(q_labels) - 1, 0))
    views = build_views(prepared, name, layer=0, head=0)
    harmless = dataclasses.replace(prepared, tokens=tuple(neutral([display_token(t) for t in prepared.tokens])),
                                   target_tokens=tuple(neutral([display_token(t) for t in prepared.target_tokens])))
    plain = build_views(harmless, name, layer=0, head=0)
    for document, neutral_document, scripts in ((views.head_html, plain.head_html, HEAD_VIEW_SCRIPTS),
                                                 (views.model_html, plain.model_html, MODEL_VIEW_SCRIPTS)):
        params = assert_bertviz_safe(document, neutral_document, None, scripts)
        assert params["attention"][0]["left_text"] == [display_token(t) for t in prepared.tokens]
    assert token_labels(prepared.tokens) == prepared.labels


# ------------------------------------------------------------------ bertviz documents


@FUZZ
@given(raw=labels_lists, length=st.integers(1, 5), title=st.one_of(st.none(), texts))
def test_bertviz_documents_keep_any_tokens_and_title_escaped(raw, length, title):
    tokens = [raw[i % len(raw)] for i in range(length)]  # duplicates are fine for bertviz
    rng = np.random.default_rng(length)
    attention = [rng.dirichlet(np.ones(length), size=(1, 2, length)) for _ in range(2)]
    cross = [rng.dirichlet(np.ones(length), size=(1, 2, 1)) for _ in range(2)]
    decoder = [np.ones((1, 2, 1, 1)) for _ in range(2)]
    builders = [
        (lambda t: head_view_html(attention, t, layer=1, heads=[0], title=title), HEAD_VIEW_SCRIPTS),
        (lambda t: model_view_html(attention, t, title=title), MODEL_VIEW_SCRIPTS),
        (lambda t: head_view_html_encoder_decoder(attention, decoder, cross, t, t[:1], title=title), HEAD_VIEW_SCRIPTS),
    ]
    for build, scripts in builders:
        params = assert_bertviz_safe(build(tokens), build(neutral(tokens)), title, scripts)
        assert params["attention"][0]["left_text"] == tokens
