"""Shared state and helpers of the Streamlit app: checkpoints, the sidebar's selection, traces.

Pages import from here; nothing here is imported by `model/` or `viz/`.

    checkpoints.py  which checkpoints exist (shipped and the user's own) and loading them, cached
    state.py        the sidebar's Selection for this run, and widgets bound to URL query parameters
    examples.py     default and example inputs per task
    inputs.py       checking user text against a checkpoint: ids plus user-facing notes
    tracing.py      (checkpoint, text) -> a cached, prepared trace and its token labels
    sidebar.py      the sidebar every page shares (rendered once, by app.py)
    ui.py           small page helpers: intro text, notes, charts
"""
