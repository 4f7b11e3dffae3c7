"""The explanation layer: typed, frozen records of everything a page shows, computed once from a model.

It imports `model/` and nothing of the app (no Streamlit, plotly or bertviz; tests/test_layering.py
checks). Pages and figures read these records; they never recompute a number from a tensor.
Import from the modules themselves (`from explain.trace import prepare_trace`).
"""
