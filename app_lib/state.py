"""What the sidebar chose in this run, and widgets whose values live in the URL.

app.py renders the sidebar and calls `set_selection` before `pg.run()`; pages call
`current_selection()`. The checkpoint, the input text, and each page's layer, head and
query position are widgets bound to query parameters (Streamlit's `bind="query-params"`),
so a link such as

    /heatmaps?checkpoint=reversal-gqa&text=3+1+4+1+5+9+2+6&layer=1&head=2

reopens exactly that view. A value a widget does not offer (a hand-edited link,
`?checkpoint=../../etc/passwd`, `?layer=99`) gets a visible note and the default view.
URL keys are plain names; keep them stable, old links depend on them.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import streamlit as st

from explain.inputs import code_span
from model import LoadedCheckpoint

from .checkpoints import CheckpointEntry
from .user_models import owner_tag

_SELECTION_KEY = "_tp_selection"
_SESSION_TOKEN_KEY = "_tp_session_token"


@dataclass(frozen=True)
class Selection:
    """The checkpoint and input the sidebar chose. `checkpoint` is shared and cached: read it, never change it."""

    entry: CheckpointEntry
    checkpoint: LoadedCheckpoint
    text: str


def set_selection(selection: Selection | None) -> None:
    """Store this run's selection (app.py does this before running the page)."""
    st.session_state[_SELECTION_KEY] = selection


def session_token() -> str:
    """This browser session's secret token (random, made on first use, never sent to the browser)."""
    return st.session_state.setdefault(_SESSION_TOKEN_KEY, secrets.token_hex(16))


def session_owner() -> str:
    """The owner tag this session writes into the models it saves (see app_lib.user_models)."""
    return owner_tag(session_token())


def ensure_entrypoint() -> None:
    """Rerun through app.py when Streamlit ran this page on its own.

    On a fresh server, a first request for /heatmaps (a teacher's link) finds a `pages/`
    folder and, before app.py has ever called st.navigation, runs pages/heatmaps.py directly
    in the old folder-based mode: no sidebar, no selection. Switching that mode off and
    rerunning makes Streamlit run app.py, whose st.navigation then opens the same page
    (app_lib.streamlit_internals: no supported API does this). Every page calls this first:
    `current_selection()` does; a page that does not use the selection calls it directly
    (pages/home.py).
    """
    from .streamlit_internals import leave_pages_folder_mode

    if leave_pages_folder_mode():
        st.rerun()


def current_selection() -> Selection:
    """The sidebar's selection in this run; stops the page with a message when there is none."""
    ensure_entrypoint()
    selection = st.session_state.get(_SELECTION_KEY)
    if selection is None:
        st.info("Pick a working checkpoint in the sidebar to see this page.")
        st.stop()
    return selection


def _check_offered(key: str, options: list[Any], index: int, where) -> int:
    """The index to create the widget with, after checking the URL's value against `options`.

    A link's value the widget does not offer (an empty one included) gets a visible note. A value this
    session's own widget put in the URL (a layer picked on a model with more layers, before switching
    checkpoints) is no link: the widget is set back to its default quietly, through the Session State
    API so that the browser shows it too; the widget is then created with index 0, since Streamlit
    warns about a default given beside a value set that way.
    """
    raw = st.query_params.get(key)
    if raw is None or raw in {str(o) for o in options}:
        return index
    if key in st.session_state and str(st.session_state[key]) == raw:
        st.session_state[key] = options[index]
        return 0
    _warn_link_value(key, raw, "not one of the choices here", "the default", where)
    return index


def _warn_link_value(key: str, raw: str, why: str, shown: str, where) -> None:
    """The note for a URL value a widget cannot take: what the link asked for, and what is shown instead."""
    if raw == "":
        where.warning(f"The link gives {key} no value; showing {shown} instead.")
        return
    where.warning(f"The link asked for {key} = {code_span(raw[:80])}, which is {why}; showing {shown} instead.")


def url_selectbox(label: str, options: Sequence[Any], key: str, *, index: int = 0, where=st,
                  on_change: Callable | None = None, help: str | None = None) -> Any:
    """A selectbox whose value is ?key=str(option) in the URL (options are shown as str(option))."""
    options = list(options)
    index = _check_offered(key, options, min(index, len(options) - 1), where)
    return where.selectbox(label, options, index=index, key=key, bind="query-params", on_change=on_change, help=help)


def url_radio(label: str, options: Sequence[Any], key: str, *, index: int = 0, where=st,
              captions: Sequence[str] | None = None, horizontal: bool = True) -> Any:
    """A radio group bound to ?key=option."""
    options = list(options)
    index = _check_offered(key, options, min(index, len(options) - 1), where)
    return where.radio(label, options, index=index, key=key, bind="query-params", captions=captions,
                       horizontal=horizontal)


def url_text_input(label: str, key: str, default: str, *, where=st, max_chars: int | None = None,
                   help: str | None = None) -> str:
    """A text input bound to ?key=text, starting at `default`.

    Once the widget holds a value (typed, from the URL, or set through st.session_state by a
    callback), `default` is no longer passed: Streamlit warns when a widget gets both.
    """
    value = None if key in st.session_state else default
    return where.text_input(label, value=value, key=key, bind="query-params", max_chars=max_chars, help=help) or ""


def url_toggle(label: str, key: str, *, default: bool = False, where=st, help: str | None = None) -> bool:
    """A toggle bound to ?key=true/false (any other value gets a note and the default)."""
    raw = st.query_params.get(key)  # read first: binding the widget rewrites a value it cannot take
    value = where.toggle(label, value=default, key=key, bind="query-params", help=help)
    if raw is not None and raw.lower() not in ("true", "false"):
        _warn_link_value(key, raw, "not true or false", "off" if not value else "on", where)
    return value


def url_slider(label: str, key: str, *, min_value: int, max_value: int, default: int, step: int = 1,
               where=st, help: str | None = None) -> int:
    """An integer slider bound to ?key=number; a value Streamlit does not take as given gets a note.

    Streamlit shows the default for text and out-of-range numbers, and truncates "12.5" to 12; the
    check depends on the link's value only, so it never fires for a value the user picked since.
    """
    raw = st.query_params.get(key)  # read first: binding the widget rewrites a value it cannot take
    value = where.slider(label, min_value=min_value, max_value=max_value, value=default, step=step, key=key,
                         bind="query-params", help=help)
    if raw is not None and not (re.fullmatch(r"-?[0-9]+", raw) and min_value <= int(raw) <= max_value):
        _warn_link_value(key, raw, f"not a whole number from {min_value} to {max_value}", str(value), where)
    return value


def url_float_slider(label: str, key: str, *, min_value: float, max_value: float, default: float, step: float,
                     where=st, help: str | None = None) -> float:
    """A slider of decimal numbers bound to ?key=number; a link's value outside the range gets a note."""
    raw = st.query_params.get(key)  # read first: binding the widget rewrites a value it cannot take
    value = where.slider(label, min_value=min_value, max_value=max_value, value=default, step=step, key=key,
                         bind="query-params", help=help)
    if raw is not None and not (_is_number(raw) and min_value <= float(raw) <= max_value):
        _warn_link_value(key, raw, f"not a number from {min_value} to {max_value}", str(value), where)
    return value


def url_number_input(label: str, key: str, *, min_value: int, max_value: int, default: int, where=st,
                     help: str | None = None) -> int:
    """A whole-number input bound to ?key=number; a link's value it cannot take gets a note."""
    raw = st.query_params.get(key)  # read first: binding the widget rewrites a value it cannot take
    value = where.number_input(label, min_value=min_value, max_value=max_value, value=default, step=1, key=key,
                               bind="query-params", help=help)
    if raw is not None and not (re.fullmatch(r"[0-9]+", raw) and min_value <= int(raw) <= max_value):
        _warn_link_value(key, raw, f"not a whole number from {min_value} to {max_value}", str(value), where)
    return value


def _is_number(raw: str) -> bool:
    return re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", raw) is not None


def url_number_field(label: str, key: str, *, default: int | float, step: int | float | None = None,
                     format: str | None = None, where=st, help: str | None = None) -> int | float:
    """A number input (whole or decimal) bound to ?key=number, starting at `default`; a link's value that is
    no number gets a note.

    Unlike url_number_input, no min or max: a value out of range is the caller's to refuse, with its
    reason. To put a new default in (another task's), delete the key from st.session_state and from
    st.query_params in a callback: the widget then starts again at `default`.
    """
    raw = st.query_params.get(key)  # read first: binding the widget rewrites a value it cannot take
    number = where.number_input(label, value=default, step=step, format=format, key=key, bind="query-params",
                                help=help)
    if raw is not None and not re.fullmatch(r"-?[0-9]+(\.[0-9]*)?([eE]-?[0-9]+)?", raw):
        _warn_link_value(key, raw, "not a number", str(number), where)
    return number
