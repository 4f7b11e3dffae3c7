"""Load test: one `streamlit run app.py`, N students clicking through it in one Chromium.

    python -m benchmarks.load                       # 20 sessions, 3 rounds, 3 training runs
    python -m benchmarks.load --quick               # smoke run: 2 sessions, 1 short round, 1 short training run
    python -m benchmarks.load --sessions 5 --duration 120 --out report.json   # .json: JSON, otherwise Markdown

What it does. It starts one server (headless, its own port, an empty temporary $TP_USER_MODELS, the
app's default $TP_MAX_TRAINING_RUNS unless --max-runs is given) and one headless Chromium (Playwright,
/usr/bin/chromium, the flags of tests/browser/conftest.py) with one browser context per session.
Sessions start `--stagger` seconds apart. A round visits the six inspection pages (embeddings,
positional, attention step by step, heatmaps, compare, KV cache) in a random order; on each page a
session makes `--actions` random changes (layer, head, query/key position, slider, toggle, radio, next
token, or in the sidebar: checkpoint, example, typed input), thinking `--think` seconds before each.
Everything random comes from one seeded RNG per session (`--seed`).

Training. The first `--training-runs` sessions begin on the Train page and start a run of
`--train-steps` steps; the queue wait is the time from the click on *Start training* until the page
shows the run training. When there are more runs than slots, the first session whose run trains
closes its tab `--leave-after` seconds into its run, once another run is waiting for a slot (the
server is given $TP_TRAINING_HEARTBEAT_S = `--heartbeat`), and the report says whether a waiting
run started while every other run was still training, i.e. whether the closed tab's slot was
freed. That session then reopens the app and inspects like the others.

What "re-run latency" is. An init script in every page records (with `performance.now()`) the first
click or key press of an action and the type of every message the server sends over the WebSocket.
An action's latency runs from the input event that changed the widget to the server's
`script_finished` message of the run it caused: the browser sending the change, the server queueing
and running the page script, and every message of that run arriving and being read by the page's
JavaScript. Drawing the charts afterwards is not included. `server` is the part from the run's
`new_session` message (its start) to `script_finished`, as the browser saw them arrive. The server
also times every run itself ($TP_RUN_LOG, app_lib/runlog.py: the sidebar and the page, on the
server's clock): that is "server run time" in the report, free of the browsers' own delays. Not used: the "Running..." status widget (the
frontend shows it only after a delay, so quick runs never show it) and the `data-test-script-state`
attribute of `[data-testid="stApp"]` (on a busy browser React applies "running" and "notRunning" in
one render, so the attribute never changes and the run is missed).

Errors. After every action: any `[data-testid="stException"]` on the page, uncaught page errors,
console errors (except the two 404s of Streamlit's base-path probe on deep links), the connection
state leaving CONNECTED, a run not finished within `--action-timeout`, and the driver failing to find
a widget ("driver" errors: the load test's own problem, listed apart).

Memory and CPU. A thread samples every second, from /proc: the RSS of the server process and its
children, and the CPU time (user + system) of three process groups: the server, Chromium (all its
processes), and the driver (this Python process and Playwright's node). Memory is reported at the
first sample, when every session has finished its first round, at the end of the rounds, at its
maximum, and 15 s after every context was closed (per-session state released?).

Modules: `cli` (the command line and `main`), `server` (start and stop it), `driver` (all students in
one Chromium), `student` (one student's actions and timing), `browser` (Chromium's flags and the
in-page scripts), `sampler` (/proc), `records` (what is recorded), `report` (JSON and Markdown).
"""

from .browser import CHROMIUM_ARGS, chromium_executable
from .cli import cpu_list, main, parse
from .records import Action, Problem, Run, TrainingRecord
from .report import build_report, markdown, read_run_log, server_run_summary
from .sampler import Sampler, _descendants, _proc_tree
from .server import ROOT, free_port, start_server, stop_server
from .student import PAGES, Student

# benchmarks/page_cost.py reuses the server, the student and the /proc helpers from here.
__all__ = ["CHROMIUM_ARGS", "PAGES", "ROOT", "Action", "Problem", "Run", "Sampler", "Student", "TrainingRecord",
           "_descendants", "_proc_tree", "build_report", "chromium_executable", "cpu_list", "free_port", "main",
           "markdown", "parse", "read_run_log", "server_run_summary", "start_server", "stop_server"]
