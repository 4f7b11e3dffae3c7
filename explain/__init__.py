"""The explanation layer: typed, frozen records of everything a page shows, computed once from a model.

It imports `model/` and nothing of the app (no Streamlit, plotly or bertviz; tests/test_layering.py
checks). Pages and figures read these records; they never recompute a number from a tensor.
Import from the modules themselves (`from explain.trace import prepare_trace`).

    inputs.py       user text -> the ids a checkpoint reads, with notes for everything unusual
    examples.py     default and example inputs per task
    labels.py       how tokens are written on screen ("3:the", visible spaces and newlines)
    trace.py        the prepared trace: one traced forward pass of (checkpoint, text)
    attention.py    shapes, head grouping and one cell's dot product
    embeddings.py   embedding facts, the vocabulary's projection, positional tables
    cache.py        KV-cache bytes: a model's cache, its MHA/GQA/MQA versions, the calculator
    generation.py   a generation in progress, as the KV-cache page shows it
    compare.py      families of models and their quality on fresh data
    models.py       the model card and the home table's rows
    training.py     the Train page's settings and snapshots of a run
"""
