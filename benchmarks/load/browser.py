"""What runs in Chromium: its flags, and the scripts that time each rerun in the page.

The latency definitions are in the package's docstring (benchmarks/load/__init__.py).
"""

from __future__ import annotations

import os
import re
import shlex
import tempfile
from pathlib import Path

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# The same flags as tests/browser/conftest.py (benchmarks do not import from tests/).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXTERNAL = re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/]|data:|blob:|about:)")
PROBE_404 = "Failed to load resource: the server responded with a status of 404"
# Every WebSocket message from the server is logged by the type of its ForwardMsg (the first field
# after `hash` = 1 and `metadata` = 2): new_session (4) opens a script run, script_finished (6) ends
# one with a status (2 = stopped early for a rerun). The frontend's own script-state attribute is not
# used: when the browser is busy React applies "running" and "notRunning" in one render, and it never changes.
INIT_SCRIPT = """(() => {
  const log = []; window.__tpLog = log; window.__tpInput = null;
  const input = () => { if (window.__tpInput === null) window.__tpInput = performance.now(); };
  window.addEventListener('click', input, true); window.addEventListener('keydown', input, true);
  const varint = (b, p) => { let v = 0, s = 0, x; do { x = b[p.i++]; v += (x & 0x7f) * 2 ** s; s += 7; } while (x & 0x80); return v; };
  const onMessage = (event) => {
    if (!(event.data instanceof ArrayBuffer)) return;
    const b = new Uint8Array(event.data), p = {i: 0};
    while (p.i < b.length) {
      const tag = varint(b, p), field = Math.floor(tag / 8), wire = tag & 7;
      if (field === 4) { log.push(['run-start', null, performance.now()]); return; }
      if (field === 6 && wire === 0) { log.push(['run-end', varint(b, p), performance.now()]); return; }
      if ((field !== 1 && field !== 2) || wire !== 2) return;
      const length = varint(b, p); p.i += length;
    }
  };
  const Native = window.WebSocket;
  window.WebSocket = new Proxy(Native, {construct(target, args) {
    const ws = new target(...args); ws.addEventListener('message', onMessage); return ws; }});
  new MutationObserver(ms => { for (const m of ms) log.push([m.attributeName.slice(10), m.target.getAttribute(m.attributeName), performance.now()]); })
    .observe(document, {attributes: true, subtree: true, attributeFilter: ['data-test-connection-state']});
})();"""
# [input, run start, run end] of the first script run that ends after log index n, or null while there is none.
RUN_DONE_JS = """(n) => { const L = window.__tpLog; let start = null;
  for (let i = n; i < L.length; i++) { const [what, value, t] = L[i];
    if (what === 'run-start' && start === null) start = t;
    if (what === 'run-end' && value !== 2) return [window.__tpInput ?? start ?? t, start, t]; }
  return null; }"""
TRAIN_STATUS_JS = """() => { const main = document.querySelector('[data-testid="stMain"]'); const t = main ? main.innerText : '';
  if (/The run failed/.test(t)) return 'failed'; if (/\\bDone\\b.*after/.test(t)) return 'done';
  if (/\\bStopped\\b.*after/.test(t)) return 'stopped'; if (/in the queue/.test(t)) return 'queued';
  if (document.querySelector('[data-testid="stProgress"]') || /Starting\\.\\.\\./.test(t)) return 'running';
  return 'unknown'; }"""


def chromium_executable(niceness: int) -> str:
    """Chromium, or a wrapper that starts it at a lower CPU priority (`nice -n niceness`).

    In a classroom the browsers run on the students' machines; here they share the server's two
    cores. A niced browser takes only the CPU the server leaves, which approximates that setting
    (the report states which one was measured).
    """
    if niceness <= 0:
        return CHROMIUM_PATH
    wrapper = Path(tempfile.mkdtemp(prefix="tp-load-")) / "chromium"
    wrapper.write_text(f'#!/bin/sh\nexec nice -n {int(niceness)} {shlex.quote(CHROMIUM_PATH)} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)
