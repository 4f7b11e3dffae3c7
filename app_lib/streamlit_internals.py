"""The one place the app reaches into Streamlit's internals. Checked on Streamlit 1.67.0.

The `pages/` folder. With a folder of that name beside the main script, the first session's
`PagesManager` sets the class attribute `uses_pages_directory` to True, and while it is true every
script run, in every session, goes through Streamlit's older folder mode: the page file the URL
names runs on its own, without app.py. Only a call to st.navigation resets it, for all sessions
("As soon as any session of your app executes the st.navigation command, your app will ignore the
pages/ directory", the st.navigation reference). So on a fresh server whose first request is a
deep link (/heatmaps), app.py never runs and nothing calls st.navigation: no sidebar, no
selection, for that session and every later one until someone opens the home page.

No supported way does this in 1.67.0, as tried on a fresh server: no config option names the
folder mode; st.navigation resets it only once app.py runs; a page running alone reaches app.py
only through st.switch_page("app.py"), which drops the link's page and query parameters, and
switching back with st.switch_page(page, query_params=...) is refused ("Cannot directly set query
parameter 'checkpoint' - it is bound to a widget") because app.py's sidebar has bound them by
then. So the flag is reset here and the page reruns (app_lib.state.ensure_entrypoint);
tests/test_streamlit_internals.py fails when the version or the behaviour this relies on changes.
"""

from __future__ import annotations

import streamlit
from streamlit.runtime.pages_manager import PagesManager

STREAMLIT_CHECKED = "1.67.0"
_FLAG = "uses_pages_directory"


def leave_pages_folder_mode() -> bool:
    """Turn Streamlit's `pages/` folder mode off; True when it was on (the caller should then st.rerun)."""
    if not hasattr(PagesManager, _FLAG):  # the guard would silently do nothing: refuse instead
        raise RuntimeError(f"Streamlit {streamlit.__version__} has no PagesManager.{_FLAG}; "
                           f"app_lib/streamlit_internals.py was checked on {STREAMLIT_CHECKED} and needs a new check")
    if getattr(PagesManager, _FLAG):
        setattr(PagesManager, _FLAG, False)
        return True
    return False
