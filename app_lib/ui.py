"""Small page helpers: the intro every page opens with, notes, charts, and the traced input."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Sequence

import plotly.graph_objects as go
import streamlit as st

from explain.inputs import Note, code_span
from explain.labels import special_token_note
from explain.trace import PreparedTrace
from viz.style import fit_titles, present

from .runlog import timed_run
from .state import Selection, session_owner
from .tracing import traced

# Plotly's modebar stays on: its camera button downloads the figure as a PNG.
PLOTLY_CONFIG = {"displaylogo": False, "displayModeBar": True}
QUAD = re.compile(r"\\q?quad(?![A-Za-z])")  # the space between a formula's parts
# An invisible rule as tall as a full-size fraction: parts that wrap onto lines of their own keep them apart.
LINE_STRUT = r"\rule[-0.8em]{0pt}{2.6em}"
PRESENT_KEY = "present"  # the sidebar's presentation toggle, ?present=true in the URL
# Scrolls to the link's #anchor once the page has drawn it. Streamlit draws a page after the browser's
# own jump to the anchor (which finds nothing), and then rewrites the URL without the #anchor, so the
# anchor is read from the document's navigation entry, once per page load, or from the URL where a later
# in-app link kept one. Headings' ids are their text as a slug; a link may give only the start of one
# ("#3-scores"). It scrolls again while the charts above settle, and stops when the user scrolls.
SCROLL_TO_ANCHOR = """<script>
(() => {
  const entry = performance.getEntriesByType("navigation")[0];
  const fromLoad = window.__tpLoadAnchorUsed ? "" : new URL(entry ? entry.name : window.location.href).hash;
  window.__tpLoadAnchorUsed = true;
  const want = decodeURIComponent((window.location.hash || fromLoad).slice(1)).toLowerCase();
  if (!want) return;
  let tries = 0, found = 0, userScrolled = false;
  const stop = () => { userScrolled = true; };
  for (const name of ["wheel", "touchmove", "keydown", "mousedown"]) window.addEventListener(name, stop, {once: true});
  const timer = setInterval(() => {
    tries += 1;
    const target = document.getElementById(want)
      || [...document.querySelectorAll("[id]")].find(e => e.id.toLowerCase().startsWith(want));
    if (target && !userScrolled) { target.scrollIntoView({block: "start"}); found += 1; }
    if (userScrolled || found >= 8 || tries > 60) clearInterval(timer);
  }, 250);
})();
</script>"""


def intro(title: str, text: str, formula: str | Sequence[str] | None = None) -> None:
    """The page title, two or three sentences on what the student sees, and the formula (or its parts:
    show_formula)."""
    st.title(title)
    st.markdown(text)
    if formula:
        show_formula(*([formula] if isinstance(formula, str) else formula))
    st.sidebar.html(SCROLL_TO_ANCHOR, unsafe_allow_javascript=True)  # not in the main block: no script there


def show_formula(*parts: str) -> None:
    """A formula, centred, that wraps onto more lines where the page is too narrow for it.

    st.latex draws KaTeX's display mode: one line that never breaks, so on an 800-pixel screen the end of
    a long formula was cut off (a scroll bar instead would hide it on a projector, where nobody scrolls).
    Inline KaTeX, in \\displaystyle so that fractions keep their size, breaks lines like text. Several
    parts each stay whole, a line breaking only between them; one part breaks after any =, + or \\quad.
    """
    if len(parts) == 1:
        body = QUAD.sub(lambda m: m.group(0) + r"\allowbreak ", parts[0])
    else:
        body = r"\qquad\allowbreak ".join("{" + LINE_STRUT + part + "}" for part in parts)
    st.markdown(f"$\\displaystyle {body}$", text_alignment="center")


def presenting() -> bool:
    """True when the sidebar's presentation mode is on."""
    return bool(st.session_state.get(PRESENT_KEY, False))


def show_notes(notes: Sequence[Note]) -> None:
    """Each note as st.info / st.warning / st.error."""
    for note in notes:
        {"info": st.info, "warning": st.warning, "error": st.error}[note.level](note.message)


def chart(fig: go.Figure, name: str) -> None:
    """A plotly chart at full width; the PNG download is named after the chart. Its title is wrapped to fit
    an 800-pixel screen, and in presentation mode the figure is restyled, here, the one place
    (viz.style.fit_titles, viz.style.present), so no page styles its own."""
    fig = present(fig) if presenting() else fit_titles(fig)
    filename = re.sub(r"[^A-Za-z0-9_-]+", "_", name)
    config = PLOTLY_CONFIG | {"toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2}}
    st.plotly_chart(fig, config=config, width="stretch", key=f"chart::{name}")


def html_frame(document: str) -> None:
    """A complete HTML document (a bertviz view) in an iframe as tall as the document (it follows the view
    as it draws and as its width changes).

    The document is the iframe's srcdoc, so it has the app's origin and base URL: absolute paths such
    as /app/static/... (the app's static files) load from the app's server.
    """
    st.iframe(document, height="content")


def traced_input(selection: Selection) -> PreparedTrace:
    """The selection's trace, with its notes shown; stops the page when the input was refused."""
    prepared = traced(selection.entry.name, selection.text)
    show_notes(prepared.notes)
    if not prepared.ok:
        st.stop()
    line = f"{code_span(selection.entry.name)} reads {len(prepared.tokens)} tokens"
    if prepared.answer is not None:
        line += f" · {prepared.answer_label}: {code_span(prepared.answer)}"
        if prepared.answer_how:
            line += f" ({prepared.answer_how})"
    st.markdown(line)
    special = special_token_note(prepared.tokens + prepared.target_tokens + prepared.predictions)
    with st.container():  # always there, so the elements below keep their place when the model changes
        if special:
            st.caption(f"Special and invisible tokens here: {special}.")
    return prepared


def page_fragment(page: str, *, run_every: float | None = None) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorator for the part of a page below the sidebar's input: an st.fragment.

    A change to a widget inside it (layer, head, query position...) reruns only this function,
    on the server and in the browser: not app.py, the sidebar, the intro or the trace. With 20
    students on one server that is most of the work of a change (benchmarks/RESULTS.md, "Load
    test"). The function gets what it needs as arguments, fixed at the last full run; a change
    in the sidebar or a new page is a full run, which calls it afresh. Its own reruns are timed
    for $TP_RUN_LOG under `page`, marked as fragment runs. `run_every` (seconds) reruns it on a
    timer as well, as st.fragment does.
    """
    def decorate(body: Callable[..., None]) -> Callable[..., None]:
        @st.fragment(run_every=run_every)
        @functools.wraps(body)
        def run(*args, **kwargs) -> None:
            with timed_run(page, session=session_owner(), fragment=True):
                body(*args, **kwargs)
        return run
    return decorate


def record_table(records: Sequence[object], *, transpose: bool = False, index: str | None = None) -> None:
    """Typed records (dataclasses whose fields carry a "column" title) as a table, one row per record.

    The explanation layer names each column once, in the record's field metadata; a page passes the
    records and never builds the rows itself. Every cell is shown as text.
    """
    import pandas as pd  # the pages that draw tables import it anyway; the home page need not

    if not records:
        return
    columns = [(f.name, f.metadata.get("column", f.name)) for f in dataclasses.fields(records[0])]
    frame = pd.DataFrame([{title: str(getattr(r, name)) for name, title in columns} for r in records])
    if index is not None:
        frame = frame.set_index(index)
    st.dataframe(frame.T if transpose else frame, width="stretch", hide_index=index is None and not transpose)
