"""Transformer Playground: the Streamlit entry point. It routes and frames; pages do the rest.

`streamlit run app.py`. st.navigation lists every page explicitly (it turns off the
automatic pages/ discovery); the sidebar (checkpoint, model card, input) is drawn here
once per run and handed to the page through app_lib.state.
"""

import pandas  # noqa: F401  (imported before any page: see below)
import streamlit as st

from app_lib.runlog import timed_run
from app_lib.sidebar import SIDEBAR_PX, render_sidebar
from app_lib.state import session_owner, set_selection
from app_lib.tour import HOME, sections

# pandas is imported before any page: plotly looks it up in sys.modules without importing it, so two
# sessions' first pages at once could find it half-imported; an import statement waits for a module that
# another thread is still initialising.

# The favicon is an emoji, drawn by the browser: with no icon or a Material one the browser fetches the
# page's icon from fonts.gstatic.com, which an offline classroom cannot reach. (Checking the emoji loads
# Streamlit's emoji table, about 0.5 s once per server; an image file would load Pillow, as long.)
st.set_page_config(page_title="Transformer Playground", page_icon="🔍", layout="wide", initial_sidebar_state=SIDEBAR_PX)

navigation = st.navigation({
    section: [st.Page(page.path, title=page.title, icon=page.icon, default=page.path == HOME) for page in pages]
    for section, pages in sections().items()
}, expanded=True)  # every page of the tour in the menu: collapsed, it hid the last pages under "View more"
# Server-side run time, only when $TP_RUN_LOG is set (load test).
with timed_run(navigation.url_path or "home", session=session_owner()):
    set_selection(render_sidebar())
    navigation.run()
