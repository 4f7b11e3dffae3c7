"""Records as Markdown, every cell shown literally (no Streamlit: plain text the pages hand to st.markdown)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation mark CommonMark can escape


def escape_markdown(text: str) -> str:
    """`text` shown literally inside Markdown: punctuation backslash-escaped, line breaks as spaces.

    Escaping every punctuation mark also defuses Streamlit's extras ($math$, :red[colour], :emoji:).
    """
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", re.sub(r"\s+", " ", str(text)))


def markdown_table(records: Sequence[object]) -> str:
    """Records of one dataclass as a Markdown table; columns are the fields' "column" titles.

    The home page draws its table this way rather than with st.table: that needs pandas, whose
    import alone (about 1.5 s here) would double the time to a first page (benchmarks/app_latency.py).
    """
    fields = dataclasses.fields(records[0]) if records else ()
    lines = ["| " + " | ".join(escape_markdown(f.metadata.get("column", f.name)) for f in fields) + " |",
             "|" + " --- |" * len(fields)]
    lines += ["| " + " | ".join(escape_markdown(getattr(r, f.name)) for f in fields) + " |" for r in records]
    return "\n".join(lines)
