"""The Your models page in Chromium: a real upload through Streamlit's file uploader lands in the user folder.

AppTest (tests/test_uploads.py) hands files to the uploader without HTTP; this test sends them the way a
browser does (set_input_files, Streamlit's upload endpoint), against its own `streamlit run app.py` whose
TP_USER_MODELS is a temporary folder this test can look into.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import pytest

from app_lib.uploads import zip_checkpoint
from model import GPT, GPTConfig, load_checkpoint, save_checkpoint
from model.tasks.reversal import ReversalTask
from model.tokenizers import SymbolTokenizer

from . import test_app_browser as base
from .test_app_browser import assert_clean_app, open_app, running_app, screenshot

page = base.page  # the offline page that also records failed responses

pytestmark = pytest.mark.browser
RUN_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(base URL, user-models folder) of a fresh server; killed when the module is done."""
    user_dir = tmp_path_factory.mktemp("user_models")
    env = os.environ | {"TP_USER_MODELS": str(user_dir)}
    with running_app(tmp_path_factory.mktemp("streamlit") / "server.log", env) as url:
        yield url, user_dir


@pytest.fixture(scope="module")
def checkpoint_zip(tmp_path_factory) -> Path:
    """A small reversal checkpoint as the zip the page's download button would give."""
    folder = tmp_path_factory.mktemp("source")
    model = GPT(GPTConfig(vocab_size=4, max_len=8, d_model=16, n_heads=2, n_layers=1))
    path = save_checkpoint(folder / "rev", model, SymbolTokenizer.of_size(4),
                           {"task": ReversalTask(n=3, vocab=4).describe()})
    archive = folder / "Class Demo.zip"
    archive.write_bytes(zip_checkpoint(path))
    return archive


def upload(page, *paths: Path) -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files([str(p) for p in paths])
    for path in paths:  # each file shows up in the list once its upload has finished
        page.get_by_text(path.name, exact=True).first.wait_for(timeout=RUN_TIMEOUT_MS)
    page.get_by_role("button", name="Upload", exact=True).click()  # waits until the uploads have finished


def test_upload_in_the_browser_saves_lists_and_refuses_pickles(server, checkpoint_zip, page, browser_log,
                                                            artifacts_dir, tmp_path):
    url, user_dir = server
    open_app(page, url)  # a fresh server's first request is the home page (see test_app_browser.py)
    open_app(page, f"{url}/my_models")
    page.get_by_text("No saved models yet").wait_for(timeout=RUN_TIMEOUT_MS)  # visible, or this raises

    upload(page, checkpoint_zip)
    page.get_by_text(re.compile(r"Saved as user/class-demo")).wait_for(timeout=RUN_TIMEOUT_MS)
    assert load_checkpoint(user_dir / "class-demo").meta["uploaded_from"] == "Class Demo.zip"
    # The list above the message is redrawn in the same rerun, but Streamlit streams elements: the success
    # text can be on screen before the row's download button, so wait for the button, then count it.
    download = page.get_by_role("button", name=re.compile("Download .zip"))
    download.first.wait_for(timeout=RUN_TIMEOUT_MS)
    assert download.count() == 1
    screenshot(page, artifacts_dir / "app_my_models.png")
    page.get_by_role("button", name="Open it now").click()
    page.wait_for_function("() => location.search.includes('checkpoint=user%2Fclass-demo') "
                           "|| location.search.includes('checkpoint=user/class-demo')", timeout=RUN_TIMEOUT_MS)

    open_app(page, f"{url}/my_models")
    evil = tmp_path / "model.pt"
    evil.write_bytes(pickle.dumps({"weights": 1}))
    upload(page, evil)
    page.get_by_text(re.compile(r"Not uploaded: model\.pt is a PyTorch pickle")).wait_for(timeout=RUN_TIMEOUT_MS)
    assert sorted(p.name for p in user_dir.iterdir()) == ["class-demo"]
    assert_clean_app(page, browser_log)

