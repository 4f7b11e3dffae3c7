"""A multiselect bound to the URL (?key=a&key=b), with a note for values it does not offer.

The widgets of app_lib/state.py take one value each; the "hide a token" page picks several.
"""

from __future__ import annotations

from typing import Sequence

import streamlit as st

from explain.inputs import code_span


def url_multiselect(label: str, options: Sequence[str], key: str, *, placeholder: str = "",
                    help: str | None = None) -> list[str]:
    """A multiselect whose choices are ?key=... in the URL; values not offered get a visible note and are dropped."""
    options = list(options)
    unknown = [raw for raw in st.query_params.get_all(key) if raw and raw not in options]  # "" picks nothing
    if unknown:
        shown = ", ".join(code_span(raw[:40]) for raw in unknown[:5])
        st.warning(f"The link asks for {key} = {shown}, which is not one of the choices here "
                   f"({code_span(options[0])} to {code_span(options[-1])}); it is left out.")
    return st.multiselect(label, options, key=key, bind="query-params", placeholder=placeholder, help=help)
