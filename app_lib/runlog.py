"""Server-side timing of every script run, for the load test: off unless $TP_RUN_LOG names a file.

benchmarks/load measures latency in the browser, where 20 headless browsers on the server's own
two cores slow the browser side down; this records what the server itself took, per run, so the
report can show both. Each run of app.py appends one JSON line:

    {"session": "...", "page": "heatmaps", "start": 1732370000.12, "seconds": 0.184, "end": "ok"}

`end` is "ok", "interrupted" (Streamlit's own control flow ended the run: st.stop, st.rerun, or a
newer widget change) or "error" (an exception in the script). `session` is whatever the caller
names the browser session by (app.py passes its owner tag). A page's fragment
(app_lib.ui.page_fragment) is timed when it reruns on its own, with "fragment": true; inside a full
run it is part of that run's line. Appends from many sessions' threads are serialised by a lock;
one short line per run.

No Streamlit import: its stop and rerun signals are BaseExceptions that are not Exceptions, which is
all this module needs to tell them from errors.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

RUN_LOG_ENV = "TP_RUN_LOG"
RunEnd = Literal["ok", "interrupted", "error"]
_WRITE_LOCK = threading.Lock()
_TIMING = threading.local()  # .active: a timed_run is open in this thread (each session's script runs in one)


@contextmanager
def timed_run(page: str, *, session: str | None = None, fragment: bool = False) -> Iterator[None]:
    """Time the body (one script run) and append it to $TP_RUN_LOG; does nothing when it is unset."""
    path = os.environ.get(RUN_LOG_ENV)
    if not path or getattr(_TIMING, "active", False):  # unset, or a fragment inside a run already timed
        yield
        return
    start_wall, start = time.time(), time.perf_counter()
    end: RunEnd = "ok"
    _TIMING.active = True
    try:
        yield
    except Exception:
        end = "error"
        raise
    except BaseException:
        end = "interrupted"
        raise
    finally:
        _TIMING.active = False
        line = json.dumps({"session": session, "page": page, "start": round(start_wall, 3),
                           "seconds": round(time.perf_counter() - start, 4), "end": end}
                          | ({"fragment": True} if fragment else {}))
        with _WRITE_LOCK, open(path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
