"""app_lib.streamlit_internals: fails when Streamlit changes what the entry-point guard relies on.

A toy app with a `pages/` folder shows the behaviour on Streamlit's own script runner (AppTest
starts each run as a fresh server would: PagesManager.uses_pages_directory reset). If one of these
fails after a Streamlit upgrade, read the module's docstring again: the guard may no longer be
needed, or may need another way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from app_lib.streamlit_internals import STREAMLIT_CHECKED, leave_pages_folder_mode

MAIN = """
import streamlit as st

st.sidebar.markdown("frame")  # what app.py draws around every page
st.navigation([st.Page("pages/home.py", default=True), st.Page("pages/plain.py"), st.Page("pages/guarded.py")]).run()
"""
PLAIN = """
import streamlit as st

st.markdown("plain page")
"""
GUARDED = """
import streamlit as st

from app_lib.streamlit_internals import leave_pages_folder_mode

if leave_pages_folder_mode():
    st.rerun()
st.markdown("guarded page")
"""


@pytest.fixture
def toy_app(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setattr(PagesManager, "uses_pages_directory", PagesManager.uses_pages_directory)  # restored after
    (tmp_path / "pages").mkdir()
    (tmp_path / "app.py").write_text(MAIN)
    (tmp_path / "pages" / "home.py").write_text("import streamlit as st\n\nst.markdown('home page')\n")
    (tmp_path / "pages" / "plain.py").write_text(PLAIN)
    (tmp_path / "pages" / "guarded.py").write_text(GUARDED)
    return tmp_path / "app.py"


def shown(at: AppTest) -> tuple[list[str], list[str]]:
    return [m.value for m in at.main.markdown], [m.value for m in at.sidebar.markdown]


def test_checked_on_this_streamlit_version():
    assert streamlit.__version__ == STREAMLIT_CHECKED, (
        f"Streamlit {streamlit.__version__}: check app_lib/streamlit_internals.py again, then update STREAMLIT_CHECKED")


def test_a_pages_folder_turns_the_folder_mode_on_for_a_new_session(tmp_path, monkeypatch):
    monkeypatch.setattr(PagesManager, "uses_pages_directory", None)  # a fresh server
    (tmp_path / "app.py").write_text(MAIN)
    PagesManager(str(tmp_path / "app.py"))
    assert PagesManager.uses_pages_directory is False  # no pages/ folder: off
    monkeypatch.setattr(PagesManager, "uses_pages_directory", None)
    (tmp_path / "pages").mkdir()
    PagesManager(str(tmp_path / "app.py"))
    assert PagesManager.uses_pages_directory is True


def test_a_fresh_servers_deep_link_runs_the_page_without_the_entry_point(toy_app):
    """The reason for the guard: the folder mode runs pages/plain.py alone, without app.py's frame."""
    at = AppTest.from_file(str(toy_app)).switch_page("pages/plain.py").run()
    assert not at.exception
    assert shown(at) == (["plain page"], [])


def test_the_guard_reruns_a_deep_link_through_the_entry_point(toy_app):
    at = AppTest.from_file(str(toy_app)).switch_page("pages/guarded.py").run()
    assert not at.exception
    assert shown(at) == (["guarded page"], ["frame"])
    assert PagesManager.uses_pages_directory is False  # app.py's st.navigation keeps it off from now on


def test_the_guard_does_nothing_once_the_mode_is_off(monkeypatch):
    monkeypatch.setattr(PagesManager, "uses_pages_directory", False)
    assert leave_pages_folder_mode() is False
    monkeypatch.setattr(PagesManager, "uses_pages_directory", True)
    assert leave_pages_folder_mode() is True and PagesManager.uses_pages_directory is False


def test_the_guard_fails_loudly_when_the_flag_is_gone(monkeypatch):
    monkeypatch.delattr(PagesManager, "uses_pages_directory")
    with pytest.raises(RuntimeError, match="checked on"):
        leave_pages_folder_mode()
