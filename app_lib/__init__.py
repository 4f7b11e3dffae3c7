"""The UI package: what pages need from Streamlit, and the server-side services they use.

Pages import from here and from explain/ and viz/; nothing below imports this package.

    state.py              the sidebar's Selection for this run, and widgets bound to URL query parameters
    sidebar.py            the sidebar every page shares (rendered once, by app.py)
    tour.py               the tour of pages, read by app.py's navigation and the home page
    ui.py                 page helpers: intro, notes, charts, record tables, page fragments
    markdown.py           records as literal Markdown tables
    checkpoints.py        which checkpoints exist and loading them (cached, shared, read-only)
    tracing.py            explain/'s records of a listed checkpoint, cached per (version, text)
    bertviz_views.py      the bertviz documents of a trace, cached
    user_models.py        the user-model store: names, the user/ prefix, ownership, save, delete, listing
    uploads.py            checking and installing uploaded checkpoints (never unpickled)
    training_*.py         the Train page's runs: the queue, the jobs, the worker process
    runlog.py             per-run timing for the load test ($TP_RUN_LOG)
    streamlit_internals.py  the one place that touches Streamlit internals (checked on 1.67.0)
"""
