"""Hand-edited links: every query parameter the app reads, given a value it cannot take.

A teacher's link may be mistyped or malicious: `?checkpoint=../../etc/passwd`, `?layer=99`, `?head=abc`.
Each must show a visible note and the default view (the same charts as with no parameter), never an
exception; and the checkpoint parameter must never become a path: a spy on every way the app reads
files checks that nothing outside checkpoints/ and the user-models folder is opened by app code,
and that the traversal targets (including a real checkpoint planted outside both folders) are never
opened by anyone.
"""

from __future__ import annotations

import builtins
import importlib.util
import io
import os
import sys
import sysconfig
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

import app_lib.checkpoints as app_checkpoints
import model.checkpoint as model_checkpoint
from explain.inputs import code_span
from model import GPT, GPTConfig, save_checkpoint
from model.tokenizers import WordTokenizer
from viz.bertviz_html import VENDOR_DIR

pytestmark = pytest.mark.usefixtures("no_pages_folder_mode", "one_torch_thread")  # see tests/conftest.py

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 60
DEFAULT_CHECKPOINT = "reversal-mha"  # first in app_lib.checkpoints.PREFERRED_ORDER
APP_CODE = [ROOT / "app.py", ROOT / "app_lib", ROOT / "model", ROOT / "pages", ROOT / "viz"]
LIBRARIES = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}

BAD_CHECKPOINTS = {
    "unknown": "no-such-model",
    "dotdot": "../../etc/passwd",
    "absolute": "/etc/passwd",
    "user_dotdot": "user/../../etc/passwd",
    "url_encoded": "..%2F..%2Fetc%2Fpasswd",  # what arrives when a link encodes twice
    "encoded_dots": "%2e%2e/%2e%2e/etc/passwd",
    "empty": "",
    "planted_outside": "user/../outside",  # a real, loadable checkpoint next to the user-models folder
    "shipped_by_path": "checkpoints/dates",  # a listed checkpoint, but by path: only names are offered
    "markup": "\r# Heading <b>x</b> $x$ :red[x] `",
}


# ------------------------------------------------------------------ the file spy


class FileSpy:
    """Records every file the process opens or lists, and which of those app code asked for.

    Covers builtins.open / io.open (so Path.open, read_text, read_bytes), os.open, os.listdir,
    os.scandir (Path.iterdir), and the two loaders that open files outside Python: safetensors'
    load_file as model.checkpoint calls it, and model.load_checkpoint as app_lib.checkpoints calls it.
    """

    def __init__(self) -> None:
        self.opened: list[Path] = []
        self.by_app: list[Path] = []

    def record(self, path, by_app: bool | None = None) -> None:
        if isinstance(path, int) or path is None:
            return  # a file descriptor: its path was recorded when it was opened
        resolved = Path(os.fsdecode(path)).resolve()
        self.opened.append(resolved)
        if by_app if by_app is not None else _called_by_app():
            self.by_app.append(resolved)

    def wrap(self, function, by_app: bool | None = None):
        def spied(path=".", *args, **kwargs):
            self.record(path, by_app)
            return function(path, *args, **kwargs)

        return spied

    def install(self, monkeypatch) -> None:
        opener = self.wrap(builtins.open)
        monkeypatch.setattr(builtins, "open", opener)
        monkeypatch.setattr(io, "open", opener)
        for name in ("open", "listdir", "scandir"):
            monkeypatch.setattr(os, name, self.wrap(getattr(os, name)))
        monkeypatch.setattr(model_checkpoint, "load_file", self.wrap(model_checkpoint.load_file, by_app=True))
        monkeypatch.setattr(app_checkpoints, "load_checkpoint", self.wrap(app_checkpoints.load_checkpoint, by_app=True))

    def app_reads_outside(self, allowed: list[Path]) -> list[Path]:
        return [p for p in self.by_app if not any(p.is_relative_to(a) for a in allowed)]

    def touched(self, target: Path) -> list[Path]:
        return [p for p in self.opened if p == target or p.is_relative_to(target)]


def _called_by_app() -> bool:
    """True when the nearest caller outside the standard library (pathlib, io...) is app code."""
    frame = sys._getframe(3)  # 0 this, 1 record, 2 the spied wrapper, 3 who called open
    while frame is not None:
        where = Path(frame.f_code.co_filename).resolve()
        if any(where.is_relative_to(lib) for lib in LIBRARIES) or where.is_relative_to(ROOT / "tests"):
            return False  # a library (streamlit, plotly...) or the test itself
        if any(where == a or where.is_relative_to(a) for a in APP_CODE):
            return True
        frame = frame.f_back  # the standard library or a frozen module: look at who called it
    return False


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """A user-models folder with one tiny model, and next to it a loadable checkpoint and a secret file."""
    root = tmp_path_factory.mktemp("links")
    torch.manual_seed(0)
    words = WordTokenizer.build("to be or not to be that is the question", 20)
    gpt = GPT(GPTConfig(vocab_size=words.vocab_size, max_len=24, d_model=16, n_heads=4, n_layers=2))
    save_checkpoint(root / "user_models" / "tiny-words", gpt, words, {})
    save_checkpoint(root / "outside", gpt, words, {})
    (root / "secret.txt").write_text("not for the app", encoding="utf-8")
    return {"user": root / "user_models", "outside": root / "outside", "secret": root / "secret.txt"}


@pytest.fixture
def spy(folders, monkeypatch) -> FileSpy:
    """The spy, installed and proved able to see an app-code read of /etc/passwd and of a planted checkpoint."""
    monkeypatch.setenv("TP_USER_MODELS", str(folders["user"]))
    spy = FileSpy()
    spy.install(monkeypatch)
    model_checkpoint._looks_like_pickle(Path("/etc/passwd"))  # app code reading a file it is handed
    model_checkpoint.load_checkpoint(folders["outside"])
    assert Path("/etc/passwd").resolve() in spy.app_reads_outside(allowed_folders(folders))
    assert spy.touched(folders["outside"]) and spy.app_reads_outside(allowed_folders(folders))
    spy.opened.clear()
    spy.by_app.clear()
    app_checkpoints._load_cached.clear()  # so this run loads its checkpoint through the spied loaders
    return spy


def allowed_folders(folders) -> list[Path]:
    """Where app code may read: the checkpoints, the user's models, and the JavaScript viz/bertviz_html inlines."""
    bertviz = importlib.util.find_spec("bertviz").submodule_search_locations
    return [(ROOT / "checkpoints").resolve(), folders["user"].resolve(), VENDOR_DIR.resolve(),
            *(Path(p).resolve() for p in bertviz)]


def assert_read_nothing_else(spy: FileSpy, folders) -> None:
    assert not spy.app_reads_outside(allowed_folders(folders)), spy.app_reads_outside(allowed_folders(folders))
    for target in (Path("/etc/passwd"), folders["outside"], folders["secret"]):
        assert not spy.touched(target.resolve()), target


def open_app(query: dict[str, str], page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def chart_specs(at: AppTest) -> list[str]:
    return [chart.proto.spec for chart in at.get("plotly_chart")]


_defaults: dict[tuple, list[str]] = {}


def default_view(page: str, checkpoint: str = DEFAULT_CHECKPOINT) -> list[str]:
    """The charts of a page opened with no parameter but the checkpoint (computed once per page)."""
    if (page, checkpoint) not in _defaults:
        _defaults[page, checkpoint] = chart_specs(open_app({"checkpoint": checkpoint}, page))
    return _defaults[page, checkpoint]


def link_warnings(elements, key: str) -> list[str]:
    return [w.value for w in elements if f"link asked for {key} =" in w.value or f"link gives {key} no" in w.value]


# ------------------------------------------------------------------ the checkpoint parameter


@pytest.mark.parametrize("value", list(BAD_CHECKPOINTS.values()), ids=list(BAD_CHECKPOINTS))
def test_a_bad_checkpoint_gets_a_note_the_default_and_no_file_read(spy, folders, value):
    at = open_app({"checkpoint": value})
    assert at.selectbox(key="checkpoint").value == DEFAULT_CHECKPOINT
    notes = link_warnings(at.sidebar.warning, "checkpoint")
    assert len(notes) == 1, [w.value for w in at.sidebar.warning]
    if value:
        assert code_span(value) in notes[0] and "\r" not in notes[0]
    assert any(p.name == "model.safetensors" and p.parent.name == DEFAULT_CHECKPOINT for p in spy.by_app)
    at.switch_page("pages/heatmaps.py").run()
    assert not at.exception and chart_specs(at) == default_view("pages/heatmaps.py")
    assert_read_nothing_else(spy, folders)


def test_a_user_model_by_name_still_opens(spy, folders):
    at = open_app({"checkpoint": "user/tiny-words"}, "pages/attention_steps.py")
    assert at.selectbox(key="checkpoint").value == "user/tiny-words"
    assert not link_warnings(at.sidebar.warning, "checkpoint") and len(at.get("plotly_chart")) == 7
    assert any(p.is_relative_to(folders["user"].resolve()) for p in spy.by_app)
    assert_read_nothing_else(spy, folders)


# ------------------------------------------------------------------ layer, head, query... on every page


PAGE_PARAMS = [
    ("pages/heatmaps.py", "layer", ["99", "-1", "abc", "", "1.0"], 0),
    ("pages/heatmaps.py", "head", ["99", "abc"], 0),
    ("pages/heatmaps.py", "all_layers", ["maybe", ""], False),
    ("pages/attention_steps.py", "layer", ["99", "-1"], 0),
    ("pages/attention_steps.py", "head", ["abc", "4"], 0),
    ("pages/attention_steps.py", "query", ["99", "-1", "15"], 14),  # the default input traces 2n - 1 = 15 tokens
    ("pages/attention_steps.py", "key", ["99", "x"], 0),
    ("pages/positional.py", "length", ["9999", "abc", ""], 64),
    ("pages/positional.py", "d_model", ["7", "513"], 128),
]
CASES = [(page, key, value, default) for page, key, values, default in PAGE_PARAMS for value in values]


def widget_value(at: AppTest, key: str):
    for kind in ("selectbox", "slider", "toggle", "radio"):
        found = [w for w in at.get(kind) if w.key == key]
        if found:
            return found[0].value
    raise AssertionError(f"no widget with key {key!r}")


@pytest.mark.parametrize(("page", "key", "value", "default"), CASES,
                         ids=[f"{p.split('/')[1][:-3]}-{k}={v!r}" for p, k, v, _ in CASES])
def test_an_impossible_widget_value_gets_a_note_and_the_default_view(spy, folders, page, key, value, default):
    at = open_app({"checkpoint": DEFAULT_CHECKPOINT, key: value}, page)
    assert widget_value(at, key) == default
    assert len(link_warnings(at.warning, key)) == 1, [w.value for w in at.warning]
    assert chart_specs(at) == default_view(page)
    assert_read_nothing_else(spy, folders)


@pytest.mark.parametrize("page", ["pages/heatmaps.py", "pages/attention_steps.py"])
@pytest.mark.parametrize("value", ["bogus", "", "<b>cross</b>"])
def test_an_unknown_attention_kind_falls_back_to_the_encoder(spy, folders, page, value):
    at = open_app({"checkpoint": "dates", "attention": value}, page)
    assert at.radio(key="attention").value == "encoder"
    assert len(link_warnings(at.warning, "attention")) == 1
    assert chart_specs(at) == default_view(page, "dates")
    assert_read_nothing_else(spy, folders)


def test_every_bad_parameter_at_once(spy, folders):
    query = {"checkpoint": "../../etc/passwd", "layer": "99", "head": "abc", "query": "-1", "key": ""}
    at = open_app(query)
    assert len(link_warnings(at.sidebar.warning, "checkpoint")) == 1
    at.switch_page("pages/attention_steps.py").run()
    assert not at.exception
    assert [len(link_warnings(at.warning, k)) for k in ("layer", "head", "query", "key")] == [1] * 4
    assert chart_specs(at) == default_view("pages/attention_steps.py")
    assert_read_nothing_else(spy, folders)


def test_markup_in_a_parameter_stays_literal(spy, folders):
    value = "1\r# Heading\n<img src=x onerror=alert(1)> **b** $x$ :red[x] ``"
    at = open_app({"checkpoint": DEFAULT_CHECKPOINT, "layer": value}, "pages/heatmaps.py")
    (note,) = link_warnings(at.warning, "layer")
    assert code_span(value) in note and "\r" not in note and "\n" not in note
    assert note.count("```") == 2  # one code span, fenced by more backticks than the value holds
