"""Shared fixtures: seeded, CPU, tiny configurations; the AppTest helpers every page test uses.

Test modules import the helpers by name (`from conftest import open_page, figures`): tests/ is not a
package, and pytest puts it on sys.path for its conftest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from model import GPT, GPTConfig, Transformer, TransformerConfig, save_checkpoint


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny_gpt(n_kv_heads: int = 4, **overrides) -> GPT:
    settings = {"vocab_size": 13, "max_len": 24, "d_model": 32, "n_heads": 4, "n_layers": 2, "n_kv_heads": n_kv_heads}
    settings.update(overrides)
    return GPT(GPTConfig(**settings)).eval()


def tiny_transformer(n_kv_heads: int = 4, **overrides) -> Transformer:
    settings = {"src_vocab_size": 15, "tgt_vocab_size": 11, "max_len": 24, "d_model": 32, "n_heads": 4, "n_layers": 2,
                "n_kv_heads": n_kv_heads}
    settings.update(overrides)
    return Transformer(TransformerConfig(**settings)).eval()


@pytest.fixture
def no_pages_folder_mode(monkeypatch):
    """Run every AppTest run through app.py, as a warm server does.

    AppTest makes a new PagesManager before each run, and with a pages/ folder that puts every run
    in Streamlit's old folder mode, where app_lib.state.ensure_entrypoint reruns through app.py;
    that rerun drops button clicks. The real server is in that mode only for a fresh server's first
    deep link, which the browser tests cover. The switch itself is app_lib.streamlit_internals'.
    """
    from streamlit.runtime.pages_manager import PagesManager

    from app_lib.streamlit_internals import leave_pages_folder_mode

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        leave_pages_folder_mode()

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread, and a shared CI machine stays responsive.

    Modules that trace many tiny models opt in: `pytestmark = pytest.mark.usefixtures("one_torch_thread")`.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY_WORDS = "to be or not to be that is the question whether tis nobler in the mind"


def save_tiny_user_models(root) -> None:
    """Two tiny untrained user checkpoints in root: an encoder-decoder on dates, a word GPT with <unk>."""
    from model.tasks.dates import DatesTask
    from model.tokenizers import WordTokenizer

    torch.manual_seed(0)
    task = DatesTask()
    chars = task.make_tokenizer()
    dates = Transformer(TransformerConfig(src_vocab_size=chars.vocab_size, tgt_vocab_size=chars.vocab_size,
                                          max_len=task.required_max_len, d_model=16, n_heads=4, n_layers=2,
                                          n_kv_heads=2))
    save_checkpoint(root / "tiny-dates", dates, chars, {"task": task.describe(), "steps": 0})
    words = WordTokenizer.build(TINY_WORDS, 40)
    gpt = GPT(GPTConfig(vocab_size=words.vocab_size, max_len=24, d_model=16, n_heads=4, n_layers=2, n_kv_heads=1))
    save_checkpoint(root / "tiny-words", gpt, words, {})


APP = str(Path(__file__).resolve().parents[1] / "app.py")
APPTEST_TIMEOUT = 120  # seconds per script run: generous, CI machines are shared


def open_page(page: str, query: dict[str, str] | None = None, timeout: float = APPTEST_TIMEOUT):
    """An AppTest of app.py opened with `query` in the URL, switched to `page` ("pages/train.py"), and
    checked to have raised nothing."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=timeout)
    at.query_params.update(query or {})
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def all_figures(at) -> list[dict]:
    """Every plotly figure the page drew, in page order, as plotly JSON."""
    return [json.loads(element.proto.spec) for element in at.get("plotly_chart")]


def figure_title(figure: dict) -> str:
    """The figure's title as one line (app_lib.ui.chart breaks long titles with <br>)."""
    title = figure.get("layout", {}).get("title", {})
    return (title.get("text", "") if isinstance(title, dict) else str(title)).replace("<br>", " ")


def figures(at) -> dict[str, dict]:
    """The page's plotly figures by title (a title drawn twice keeps its last figure: use all_figures to count)."""
    return {figure_title(figure): figure for figure in all_figures(at)}


def lesson_widget_key(at, suffix: str) -> str:
    """The key of the Lessons page's widget for this question ending in `suffix` (app_lib.lessons_view
    prefixes keys per question)."""
    widgets = [*at.button, *at.text_input, *at.radio, *at.checkbox]
    keys = [w.key for w in widgets if w.key and w.key.startswith("lesson::")]
    return next(k for k in keys if k.endswith("::" + suffix))
