"""Transformer Playground: the Streamlit entry point. It routes and frames; pages do the rest.

`streamlit run app.py`. st.navigation lists every page explicitly (it turns off the
automatic pages/ discovery); the sidebar (checkpoint, model card, input) is drawn here
once per run and handed to the page through app_lib.state.
"""

from pathlib import Path

import pandas  # noqa: F401  (imported before any page: see below)
import streamlit as st

from app_lib.runlog import timed_run
from app_lib.sidebar import render_sidebar
from app_lib.state import session_owner, set_selection

ROOT = Path(__file__).resolve().parent
# pandas is imported above, in every session's first statements, because plotly looks it up in
# sys.modules without importing it: when two students' first pages ran at once, one thread's plotly
# found the other's half-imported pandas and failed ("partially initialized module 'pandas' has no
# attribute 'Series'", benchmarks/load.py). An `import` statement waits for a module another thread is
# still initialising, so no page runs before pandas is complete. It costs 1.5 s once per server.

# The favicon is an emoji, drawn by the browser: with no icon or a Material one the browser fetches the
# page's icon from fonts.gstatic.com, which an offline classroom cannot reach. (Checking the emoji loads
# Streamlit's emoji table, about 0.5 s once per server; an image file would load Pillow, as long.)
st.set_page_config(page_title="Transformer Playground", page_icon="🔍", layout="wide")

TOUR = {
    "Start": [("pages/home.py", "Home", ":material/home:")],
    "Look inside": [
        ("pages/embeddings.py", "Tokens & embeddings", ":material/data_array:"),
        ("pages/positional.py", "Positional encodings", ":material/timeline:"),
        ("pages/attention_steps.py", "Attention, step by step", ":material/calculate:"),
        ("pages/heatmaps.py", "Attention heatmaps", ":material/grid_view:"),
    ],
    # Pages added in parallel: each appears once its file exists, so the app works before and after.
    "Go further": [
        ("pages/compare_attention.py", "MHA vs GQA vs MQA", ":material/compare_arrows:"),
        ("pages/kv_cache.py", "KV cache and generation", ":material/memory:"),
        ("pages/train.py", "Train", ":material/model_training:"),
        ("pages/my_models.py", "Your models", ":material/folder_open:"),
    ],
}

sections = {
    section: [st.Page(path, title=title, icon=icon, default=path == "pages/home.py")
              for path, title, icon in pages if (ROOT / path).exists()]
    for section, pages in TOUR.items()
}
navigation = st.navigation({section: pages for section, pages in sections.items() if pages})
# Server-side run time, only when $TP_RUN_LOG is set (load test).
with timed_run(navigation.url_path or "home", session=session_owner()):
    set_selection(render_sidebar())
    navigation.run()
