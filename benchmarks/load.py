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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
MACHINE_CORES = len(os.sched_getaffinity(0))  # read before --browser-cpus narrows this process
# The same flags as tests/browser/conftest.py (benchmarks do not import from tests/).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGES = {  # url path -> the page's own widgets (kind, label)
    "embeddings": [],
    "positional": [("slider", "Length (positions)"), ("slider", "d_model")],
    "attention_steps": [("select", "Layer"), ("select", "Head"), ("select", "Query position"),
                        ("select", "Key position"), ("radio", "Attention")],
    "heatmaps": [("select", "Layer"), ("select", "Head"), ("toggle", "Show all layers"), ("radio", "Attention")],
    "compare_attention": [("select", "Layer"), ("radio", "Models")],
    "kv_cache": [("next", "Next token"), ("select", "Layer")],
}
SIDEBAR = [("select", "Checkpoint"), ("example", "Examples"), ("text", "Input text")]
SIDEBAR_SHARE = 0.3  # of actions that change the sidebar instead of the page's own widgets
EXTERNAL = re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/]|data:|blob:|about:)")
ERROR_KINDS = ("exception", "page_error", "console_error", "connection", "timeout")
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


@dataclass
class Action:
    session: int
    round: int
    page: str
    kind: str  # navigate, open, select:Layer, text, ...
    at_s: float  # seconds since the start of the run
    latency_s: float | None = None  # input event -> notRunning, in the browser
    server_s: float | None = None  # running -> notRunning
    wall_s: float | None = None  # the driver's view, including Playwright's own round trips


@dataclass
class Problem:
    session: int
    page: str
    kind: str  # exception, page_error, console_error, connection, timeout, driver
    detail: str
    at_s: float


@dataclass
class TrainingRecord:
    session: int
    clicked_s: float
    running_s: float | None = None
    finished_s: float | None = None
    final: str = "unknown"
    was_queued: bool = False
    left_at_s: float | None = None  # the tab was closed at this time

    @property
    def queue_wait_s(self) -> float | None:
        return None if self.running_s is None else self.running_s - self.clicked_s


@dataclass
class Run:
    """Everything recorded during one load test."""

    args: dict
    actions: list[Action] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    training: list[TrainingRecord] = field(default_factory=list)
    round_done_s: dict[int, float] = field(default_factory=dict)  # session -> end of its first round
    rounds_end_s: float | None = None
    t0: float = field(default_factory=time.monotonic)

    def now(self) -> float:
        return time.monotonic() - self.t0


# --------------------------------------------------------------------------- /proc sampling


def _proc_tree() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command name) of every process."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
                name, rest = stat[stat.index("(") + 1: stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
                found[int(entry)] = (int(rest[1]), name)
            except (OSError, ValueError):
                continue
    return found


def _descendants(root: int, tree: dict[int, tuple[int, str]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in tree.items():
        children.setdefault(parent, []).append(pid)
    out, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in tree or pid == root:
            out.add(pid)
            todo.extend(children.get(pid, []))
    return out


def _cpu_and_rss(pid: int) -> tuple[tuple[int, float], int] | None:
    """((start time, CPU seconds), RSS bytes) of one process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as f:
            rss_pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[19]), (int(fields[11]) + int(fields[12])) / ticks), rss_pages * os.sysconf("SC_PAGE_SIZE")


def _machine_busy_s() -> float:
    """CPU seconds all cores spent not idle since boot (everyone's work, ours included)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


class Sampler(threading.Thread):
    """Every second: server RSS, and CPU seconds per process group (server, chromium, driver)."""

    def __init__(self, server_pid: int, run: Run):
        super().__init__(daemon=True)
        self.server_pid, self.run_record = server_pid, run
        self.memory: list[tuple[float, int]] = []  # (seconds since start, server RSS bytes)
        self.cpu: dict[str, dict[tuple[int, int], float]] = {"server": {}, "chromium": {}, "driver": {}}
        self.machine_start = _machine_busy_s()
        self.machine_s = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(1.0)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        self.sample()

    def sample(self) -> None:
        tree = _proc_tree()
        server = _descendants(self.server_pid, tree)
        ours = _descendants(os.getpid(), tree) - server
        rss = 0
        for group, pids in (("server", server), ("driver", ours)):
            for pid in pids:
                got = _cpu_and_rss(pid)
                if got is None:
                    continue
                (start, cpu), resident = got
                name = "chromium" if group == "driver" and tree[pid][1].startswith("chrom") else group
                self.cpu[name][(pid, start)] = max(cpu, self.cpu[name].get((pid, start), 0.0))
                rss += resident if group == "server" else 0
        self.memory.append((self.run_record.now(), rss))
        self.machine_s = _machine_busy_s() - self.machine_start

    def cpu_seconds(self) -> dict[str, float]:
        return {group: sum(per_pid.values()) for group, per_pid in self.cpu.items()}

    def rss_at(self, seconds: float | None) -> int | None:
        if seconds is None or not self.memory:
            return None
        return min(self.memory, key=lambda m: abs(m[0] - seconds))[1]


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, env: dict, log_path: Path, session_ttl: float,
                 cpus: set[int] | None = None) -> subprocess.Popen:
    pinned = ["taskset", "--cpu-list", ",".join(map(str, sorted(cpus)))] if cpus else []  # util-linux
    command = [*pinned, sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.disconnectedSessionTTL", str(int(session_ttl)),
               "--server.port", str(port), "--server.address", "127.0.0.1",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    stop_server(server)
    raise RuntimeError(f"streamlit did not answer /_stcore/health in 90 s:\n{log_path.read_text()[-3000:]}")


def stop_server(server: subprocess.Popen) -> None:
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=15)
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------- one student


def random_input(checkpoint: str, rng: random.Random) -> str:
    """A fresh input the checkpoint can read (typed inputs miss the trace cache, as students' do)."""
    try:
        config = json.loads((ROOT / "checkpoints" / checkpoint / "config.json").read_text())
    except (OSError, ValueError):
        return ""
    task, tokenizer = config["meta"].get("task") or {}, config.get("tokenizer") or {}
    if task.get("name") == "reversal":
        return " ".join(rng.choice(tokenizer["symbols"]) for _ in range(task["n"]))
    if task.get("name") == "dates":
        import datetime as dt

        from model.tasks.dates import format_date

        day = dt.date(1900, 1, 1) + dt.timedelta(days=rng.randrange(73_000))
        return format_date(day, rng.choice(task["formats"]))
    words = [t for t in tokenizer.get("tokens", [])[:400] if t.isalpha() and t.islower()]
    return " ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) if words else ""


class Student:
    """One browser context: a student with their own session on the server."""

    def __init__(self, index: int, browser, base: str, run: Run, args: argparse.Namespace):
        self.index, self.browser, self.base, self.run, self.args = index, browser, base, run, args
        self.rng = random.Random(args.seed * 1000 + index)
        self.page_name, self.round = "home", 0
        self.context = self.page = None

    async def open(self) -> None:
        self.context = await self.browser.new_context(viewport={"width": 1100, "height": 800},
                                                      service_workers="block")
        await self.context.add_init_script(INIT_SCRIPT)
        self.page = await self.context.new_page()
        self.page.on("pageerror", lambda error: self.problem("page_error", str(error)))
        await self.context.route(EXTERNAL, self.block)
        self.page.on("console", self.console)
        await self.timed("open", self.page.goto(self.base + "/"), from_log=0)
        self.page_name = "home"

    async def close(self) -> None:
        if self.context is not None:
            await self.context.close()
            self.context = self.page = None

    async def block(self, route) -> None:
        """Like the browser tests: requests leaving this machine are aborted and listed."""
        self.problem("external_request", route.request.url[:200])
        await route.abort()

    def console(self, message) -> None:
        url = message.location.get("url", "")
        if message.type != "error" or message.text.startswith(PROBE_404) or EXTERNAL.match(url):
            return  # the probe's two 404s; a blocked request is already listed as external_request
        self.problem("console_error", f"{message.text} at {url}")

    def problem(self, kind: str, detail: str) -> None:
        self.run.problems.append(Problem(self.index, self.page_name, kind, detail[:500], round(self.run.now(), 1)))

    # ------------------------------------------------------------------ measuring

    async def mark(self) -> int:
        """Log position before the input that changes a widget."""
        return await self.page.evaluate("() => { window.__tpInput = null; return window.__tpLog.length; }")

    async def timed(self, kind: str, change, from_log: int | None = None) -> None:
        """Run `change` (a coroutine ending with the input that changes a widget) and wait for the rerun."""
        action = Action(self.index, self.round, self.page_name, kind, round(self.run.now(), 2))
        start = time.monotonic()
        n = await self.mark() if from_log is None else from_log
        await change
        try:
            handle = await self.page.wait_for_function(RUN_DONE_JS, arg=n, timeout=self.args.action_timeout * 1000,
                                                       polling=50)
            begin, running, done = await handle.json_value()
            begin = 0.0 if kind == "open" else begin  # performance.now() counts from the navigation
            action.latency_s = (done - begin) / 1000
            action.server_s = None if running is None else (done - running) / 1000
        except Exception as error:  # noqa: BLE001 - a rerun that never finished is a result, not a crash
            tail = await self.page.evaluate("(n) => window.__tpLog.slice(Math.max(0, n - 2))", n)
            self.problem("timeout", f"{kind}: {type(error).__name__}: {str(error)[:120]}; url {self.page.url}; "
                                    f"states since the input: {tail[-8:]}")
        action.wall_s = time.monotonic() - start
        self.run.actions.append(action)
        await self.check_page()

    async def check_page(self) -> None:
        shown = self.page.locator('[data-testid="stException"]')
        if await shown.count():
            self.problem("exception", (await shown.first.inner_text())[:500])
        states = await self.page.evaluate(
            "() => window.__tpLog.filter(e => e[0] === 'connection-state').map(e => e[1])")
        lost = states[states.index("CONNECTED") + 1:] if "CONNECTED" in states else []
        if lost:  # any change after the first CONNECTED: the connection was lost (and maybe regained)
            self.problem("connection", " -> ".join(states))
            await self.page.evaluate("() => { window.__tpLog.splice(0); window.__tpLog.push("
                                     "['connection-state', 'CONNECTED', 0]); }")  # report each loss once

    # ------------------------------------------------------------------ actions

    async def navigate(self, path: str) -> None:
        link = self.page.locator(f'[data-testid="stSidebarNav"] a[href$="/{path}"]')
        self.page_name = path
        await self.timed("navigate", link.click())

    async def act(self) -> None:
        """One random change on the current page or in the sidebar."""
        widgets = PAGES.get(self.page_name, [])
        pool = SIDEBAR if not widgets or self.rng.random() < SIDEBAR_SHARE else widgets
        candidates = self.rng.sample(pool, len(pool)) + SIDEBAR
        for kind, label in candidates:
            if await self.try_widget(kind, label):
                return
        self.problem("driver", f"no widget to change on {self.page_name}")

    async def try_widget(self, kind: str, label: str) -> bool:
        page = self.page
        if kind == "select":
            box = page.get_by_role("combobox", name=label, exact=True)
            if not await box.count():
                return False
            current = await box.first.input_value()
            options = await self.open_dropdown(box.first)
            texts = await options.all_inner_texts()
            others = [i for i, t in enumerate(texts) if t.strip() != current]
            if not others:
                await page.keyboard.press("Escape")
                return False
            await self.timed(f"select:{label}", options.nth(self.rng.choice(others)).click())
        elif kind == "example":
            options = await self.open_dropdown(page.get_by_role("combobox", name=label, exact=True))
            await self.timed("example", options.nth(self.rng.randrange(await options.count())).click())
        elif kind == "text":
            checkpoint = await page.get_by_role("combobox", name="Checkpoint", exact=True).input_value()
            box = page.get_by_role("textbox", name=label, exact=True)
            await box.fill(random_input(checkpoint, self.rng))
            await self.timed("text", box.press("Enter"))
        elif kind == "slider":
            thumb = page.get_by_role("slider", name=label, exact=True)
            if not await thumb.count():
                return False
            await thumb.focus()
            await self.timed(f"slider:{label}", page.keyboard.press(self.rng.choice(["ArrowLeft", "ArrowRight"])))
        elif kind == "toggle":
            toggle = page.get_by_text(label, exact=True)
            if not await toggle.count():
                return False
            await self.timed(f"toggle:{label}", toggle.click())
        elif kind == "radio":
            group = page.get_by_role("radiogroup", name=label, exact=True)
            if not await group.count():
                return False
            inputs, labels = group.locator("input"), group.locator("label")
            unchecked = [i for i in range(await inputs.count()) if not await inputs.nth(i).is_checked()]
            if not unchecked:
                return False
            await self.timed(f"radio:{label}", labels.nth(self.rng.choice(unchecked)).click())
        elif kind == "next":
            button = page.get_by_role("button", name=label, exact=True)
            if not await button.count():
                return False
            if await button.is_disabled():
                button = page.get_by_role("button", name="Reset", exact=True)
            await self.timed("next token", button.click())
        return True

    async def open_dropdown(self, box):
        """Open a selectbox's list; a click that only scrolled it into view and focused it is repeated."""
        options = self.page.get_by_role("option")
        await box.click()
        try:
            await options.first.wait_for(timeout=3_000)
        except Exception:  # noqa: BLE001 - not open yet: open it unless it is opening
            if await box.get_attribute("aria-expanded") != "true":
                await box.click()
            await options.first.wait_for(timeout=30_000)
        return options

    async def think(self) -> None:
        await asyncio.sleep(self.rng.uniform(*self.args.think))

    async def inspect(self, deadline: float | None) -> None:
        """Rounds over the inspection pages until --rounds are done or --duration has passed."""
        rounds = math.inf if deadline is not None else self.args.rounds
        while self.round < rounds and (deadline is None or self.run.now() < deadline):
            for path in self.rng.sample(list(PAGES), len(PAGES)):
                await self.think()
                await self.safely(self.navigate(path))
                for _ in range(self.args.actions):
                    await self.think()
                    await self.safely(self.act())
            self.round += 1
            if self.round == 1:
                self.run.round_done_s[self.index] = self.run.now()

    async def safely(self, step) -> None:
        """A step whose driver failure (a widget not found in time) is recorded, and the student goes on."""
        try:
            await step
        except Exception as error:  # noqa: BLE001
            where = self.page.url if self.page is not None else "no page"
            self.problem("driver", f"{type(error).__name__}: {str(error).splitlines()[0][:300]} ({where})")

    # ------------------------------------------------------------------ training

    async def train(self, shared: dict) -> None:
        """Start a run on the Train page, record the queue wait, stay until it ends, or leave: the first
        session whose run trains closes its tab, when runs are waiting for a slot."""
        await self.navigate("train")
        await self.page.get_by_label("steps", exact=True).fill(str(self.args.train_steps))
        record = TrainingRecord(self.index, round(self.run.now(), 2))
        self.run.training.append(record)
        await self.page.get_by_role("button", name="Start training").click()
        runs_wait = self.args.training_runs > shared["max_runs"]
        queued = shared.setdefault("queued", set())  # sessions whose run waits for a slot now
        while True:
            await asyncio.sleep(0.25)
            status = await self.page.evaluate(TRAIN_STATUS_JS)
            record.was_queued |= status == "queued"
            (queued.add if status == "queued" else queued.discard)(self.index)
            if status in ("running", "done", "stopped", "failed") and record.running_s is None:
                record.running_s = round(self.run.now(), 2)
                if runs_wait:
                    shared.setdefault("leaver", self.index)  # the first run to train is the one left
            leaver = shared.get("leaver") == self.index
            if status in ("done", "stopped", "failed"):
                record.finished_s, record.final = round(self.run.now(), 2), status
                break
            # Leave only while another run waits: its start then shows whether the slot was freed.
            if (leaver and queued and record.running_s is not None
                    and self.run.now() - record.running_s > self.args.leave_after):
                record.left_at_s, record.final = round(self.run.now(), 2), "tab closed"
                await self.close()  # the heartbeat stops; the server should free the slot
                await self.open()
                break
            if self.run.now() > record.clicked_s + self.args.train_timeout:
                self.problem("timeout", f"training did not end in {self.args.train_timeout} s (status {status})")
                break
        await self.check_page()


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


async def drive(args: argparse.Namespace, base: str, run: Run, max_runs: int) -> dict:
    """All students in one Chromium; they close their tabs together once every one of them is done."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        flags = [a for a in CHROMIUM_ARGS if not (args.headed and a == "--headless")]
        browser = await playwright.chromium.launch(executable_path=chromium_executable(args.browser_nice),
                                                   headless=not args.headed, args=flags)
        shared = {"max_runs": max_runs, "done": 0, "all_done": asyncio.Event()}

        async def one(index: int) -> None:
            s = Student(index, browser, base, run, args)
            await asyncio.sleep(index * args.stagger)
            await s.safely(s.open())
            if index < args.training_runs:
                for _attempt in range(3):  # a busy page may hide the Train form from the driver: try again
                    problems = len(run.problems)
                    await s.safely(s.train(shared))
                    if any(t.session == index for t in run.training) or len(run.problems) == problems:
                        break
            await s.inspect(args.duration)
            shared["done"] += 1
            if shared["done"] == args.sessions:
                run.rounds_end_s = run.now()
                shared["all_done"].set()
            await shared["all_done"].wait()
            if s.page is not None:
                await s.safely(s.check_page())
            await s.close()

        await asyncio.gather(*(one(i) for i in range(args.sessions)))
        closed_s = run.now()
        # Streamlit keeps a closed tab's session for reconnection for server.disconnectedSessionTTL
        # seconds, and drops expired ones only when it stores another: wait, then open and close one tab.
        await asyncio.sleep(args.session_ttl + 2)
        late = Student(args.sessions, browser, base, run, args)
        await late.safely(late.open())
        await late.close()
        await asyncio.sleep(3)
        version = browser.version
        await browser.close()
    return {"closed_s": closed_s, "released_s": run.now(), "chromium": version}


# --------------------------------------------------------------------------- the report


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def latency_row(name: str, actions: list[Action]) -> dict:
    values = [a.latency_s for a in actions if a.latency_s is not None]
    server = [a.server_s for a in actions if a.server_s is not None]
    if not values:
        return {"name": name, "actions": len(actions), "p50_s": None, "p95_s": None, "max_s": None,
                "server_p50_s": None}
    return {"name": name, "actions": len(actions), "p50_s": percentile(values, 50), "p95_s": percentile(values, 95),
            "max_s": max(values), "server_p50_s": percentile(server, 50) if server else None}


def build_report(run: Run, sampler: Sampler, extra: dict, wall_s: float, max_runs: int) -> dict:
    measured = [a for a in run.actions if a.kind != "open"]
    pages = sorted({a.page for a in measured})
    kinds = sorted({a.kind for a in measured})
    after_round_1 = max(run.round_done_s.values()) if len(run.round_done_s) == run.args["sessions"] else None
    rss = [m[1] for m in sampler.memory]
    cpu = sampler.cpu_seconds()
    cores = MACHINE_CORES
    errors = [p for p in run.problems if p.kind in ERROR_KINDS]
    external = sorted({p.detail for p in run.problems if p.kind == "external_request"})
    return {
        "machine": machine_line(extra.get("chromium"), run.args),
        "command": "python -m benchmarks.load " + " ".join(run.args["argv"]),
        "sessions": run.args["sessions"], "wall_s": round(wall_s, 1),
        "latency": {"overall": latency_row("all", measured),
                    "open": latency_row("first load", [a for a in run.actions if a.kind == "open"]),
                    "pages": [latency_row(p, [a for a in measured if a.page == p]) for p in pages],
                    "kinds": [latency_row(k, [a for a in measured if a.kind == k]) for k in kinds]},
        "actions": len(run.actions),
        "errors": len(errors),
        "error_counts": {k: sum(p.kind == k for p in errors) for k in sorted({p.kind for p in errors})},
        "driver_problems": sum(p.kind == "driver" for p in run.problems),
        "external_requests": sum(p.kind == "external_request" for p in run.problems), "external_urls": external,
        "problems": [asdict(p) for p in run.problems[:200]],
        "memory_mib": {
            "start": _mib(rss[0] if rss else None),
            "after_round_1": _mib(sampler.rss_at(after_round_1)), "after_round_1_at_s": after_round_1,
            "end": _mib(sampler.rss_at(run.rounds_end_s)), "end_at_s": run.rounds_end_s,
            "max": _mib(max(rss) if rss else None),
            "after_close": _mib(sampler.rss_at(extra.get("released_s"))),
            "samples": [(round(t, 1), _mib(b)) for t, b in sampler.memory],
            "timeline": memory_timeline(sampler),
        },
        "cpu": {"cores": cores, "seconds": {k: round(v, 1) for k, v in cpu.items()},
                "server_s_per_action": round(cpu["server"] / max(1, len(run.actions)), 3),
                "chromium_s_per_action": round(cpu["chromium"] / max(1, len(run.actions)), 3),
                "machine_busy_s": round(sampler.machine_s, 1),
                "others_s": round(max(0.0, sampler.machine_s - sum(cpu.values())), 1)},
        "training": {"max_runs": max_runs, "runs": [asdict(t) | {"queue_wait_s": t.queue_wait_s}
                                                    for t in run.training],
                     "disconnect": disconnect_verdict(run.training)},
    }


def read_run_log(path: Path) -> list[dict]:
    """The server's own record of every script run ($TP_RUN_LOG, written by app_lib/runlog.py)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def server_run_summary(runs: list[dict]) -> dict:
    """Run time as the server measured it (app.py's sidebar and page), per page, for finished runs.

    "rerun" runs were cut short by a newer change of the same student and are counted, not timed;
    "error" runs ended in an exception inside the script (Streamlit shows it in the page). A page's
    fragment rerunning on its own (app_lib.ui.page_fragment: a layer or head change) is a run too,
    counted apart in "fragment_runs".
    """
    finished = [r for r in runs if r["end"] in ("ok", "stop")]

    def row(name: str, group: list[dict]) -> dict:
        seconds = [r["seconds"] for r in group]
        return {"name": name, "runs": len(group), "p50_s": percentile(seconds, 50) if seconds else None,
                "p95_s": percentile(seconds, 95) if seconds else None, "max_s": max(seconds) if seconds else None}

    pages = sorted({r["page"] for r in finished})
    return {"overall": row("all", finished), "pages": [row(p, [r for r in finished if r["page"] == p]) for p in pages],
            "ends": {end: sum(r["end"] == end for r in runs) for end in ("ok", "stop", "rerun", "error")},
            "fragment_runs": sum(bool(r.get("fragment")) for r in finished)}


def memory_timeline(sampler: Sampler, every_s: float = 60.0) -> list[tuple[float, float | None]]:
    """(seconds, server RSS MiB) about every `every_s` seconds: is memory still growing, or flat?"""
    if not sampler.memory:
        return []
    end, marks, t = sampler.memory[-1][0], [], 0.0
    while t <= end:
        marks.append((round(t), _mib(sampler.rss_at(t))))
        t += every_s
    return marks


def disconnect_verdict(runs: list[TrainingRecord]) -> dict:
    """Did a waiting run start after the tab of a running one closed, while the others were still training?"""
    left = next((t for t in runs if t.left_at_s is not None), None)
    if left is None:
        return {"tested": False, "why": "no tab was closed (no more runs than training slots, or no run was "
                                        "waiting while the first one trained)"}
    waiting = [t for t in runs if t.was_queued and t.running_s is not None and t.running_s > left.left_at_s]
    if not waiting:
        return {"tested": True, "slot_freed": False, "why": "no waiting run started after the tab closed"}
    first = min(waiting, key=lambda t: t.running_s)
    others = [t for t in runs if t is not left and t is not first and not t.was_queued]
    still_training = all(t.finished_s is None or t.finished_s > first.running_s for t in others)
    return {"tested": True, "slot_freed": still_training, "closed_at_s": left.left_at_s,
            "next_started_at_s": first.running_s, "seconds_to_free": round(first.running_s - left.left_at_s, 1),
            "why": ("the waiting run started while every other run was still training" if still_training else
                    "another run had finished first, so this does not show the closed tab's slot was freed")}


def _mib(n: int | None) -> float | None:
    return None if n is None else round(n / 2**20, 1)


def machine_line(chromium: str | None, run_args: dict | None = None) -> str:
    import platform

    import streamlit

    from benchmarks.common import cpu_model

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    split = ""
    run_args = run_args or {}
    if run_args.get("server_cpus") or run_args.get("browser_cpus"):
        server, browsers = run_args.get("server_cpus") or "all", run_args.get("browser_cpus") or "all"
        split = f" (server on CPUs {server}, browsers on {browsers})"
    return (f"CPU: {cpu_model()}, {MACHINE_CORES} cores usable{split}, load average {load}; "
            f"Python {platform.python_version()}, Streamlit {streamlit.__version__}, Chromium {chromium}")


def server_runs_table(summary: dict | None) -> str:
    from benchmarks.common import format_table

    if not summary or not summary["overall"]["runs"]:
        return "no runs recorded"
    rows = [[r["name"], r["runs"], *(f"{r[k]:.2f} s" for k in ("p50_s", "p95_s", "max_s"))]
            for r in [summary["overall"], *summary["pages"]]]
    ends = ", ".join(f"{k}: {v}" for k, v in summary["ends"].items())
    return (format_table(["page", "runs", "p50", "p95", "max"], rows) + f"\n\nHow runs ended: {ends}; "
            f"of the finished runs, {summary.get('fragment_runs', 0)} reran only a page fragment")


def markdown(report: dict) -> str:
    from benchmarks.common import format_table

    def s(value):
        return "n/a" if value is None else f"{value:.2f} s"

    lat = report["latency"]
    rows = [[r["name"], r["actions"], s(r["p50_s"]), s(r["p95_s"]), s(r["max_s"]), s(r["server_p50_s"])]
            for r in [lat["overall"], *lat["pages"], lat["open"]]]
    head = ["page", "actions", "p50", "p95", "max", "server p50"]
    mem = report["memory_mib"]
    cpu, cores, wall = report["cpu"], report["cpu"]["cores"], report["wall_s"]
    cpu_rows = [[group, f"{sec:.0f} s", f"{sec / wall:.2f}", f"{100 * sec / (wall * cores):.0f}%"]
                for group, sec in [*cpu["seconds"].items(), ("other users", cpu["others_s"])]]
    train = report["training"]
    train_rows = [[t["session"], "yes" if t["was_queued"] else "no", s(t["queue_wait_s"]), t["final"]]
                  for t in train["runs"]]
    parts = [
        f"`{report['command']}`  \n{report['machine']}  \n{report['sessions']} sessions, {report['actions']} actions, "
        f"{report['wall_s']:.0f} s; errors: {report['errors']} {report['error_counts'] or ''}; "
        f"driver problems: {report['driver_problems']}; blocked requests to other hosts: "
        f"{report['external_requests']} {report['external_urls'] or ''}",
        "**Re-run latency** (input event to the end of the rerun, measured in the browser)\n\n"
        + format_table(head, rows),
        "**Server run time** (the server's own clock, from the sidebar's first line to the page's last, "
        "for every finished run; $TP_RUN_LOG)\n\n" + server_runs_table(report.get("server_runs")),
        "**By action**\n\n" + format_table(head, [[r["name"], r["actions"], s(r["p50_s"]), s(r["p95_s"]),
                                                   s(r["max_s"]), s(r["server_p50_s"])] for r in lat["kinds"]]),
        "**Server memory (RSS, MiB)**\n\n" + format_table(
            ["start", "after round 1", "end", "max", "after tabs closed"],
            [[mem["start"], mem["after_round_1"], mem["end"], mem["max"], mem["after_close"]]])
        + "\n\nOver time (s: MiB): " + ", ".join(f"{t}: {m}" for t, m in mem.get("timeline", [])),
        f"**CPU over the run** ({cores} cores, {wall:.0f} s; per action: server {cpu['server_s_per_action']:.2f} s, "
        f"Chromium {cpu['chromium_s_per_action']:.2f} s)\n\n"
        + format_table(["process group", "CPU time", "cores used (avg)", "share of the machine"], cpu_rows),
        f"**Training** (at most {train['max_runs']} at once)\n\n"
        + (format_table(["session", "queued", "queue wait", "ended"], train_rows) if train_rows else "no runs")
        + f"\n\nClosed tab frees its slot: {json.dumps(train['disconnect'])}",
        "**Problems** (first 30)\n\n" + ("\n".join(f"- {p['at_s']} s, session {p['session']}, {p['page']}, "
                                                  f"{p['kind']}: {' '.join(p['detail'][:300].split())}"
                                                  for p in report["problems"][:30]) or "none"),
    ]
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- main


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=20, help="browser contexts (students), default 20")
    p.add_argument("--rounds", type=int, default=3, help="rounds over the inspection pages (default 3)")
    p.add_argument("--duration", type=float, help="instead of --rounds: keep going for this many seconds")
    p.add_argument("--actions", type=int, default=3, help="random changes per page visit (default 3)")
    p.add_argument("--think", type=float, nargs=2, default=(2.0, 5.0), metavar=("MIN", "MAX"),
                   help="seconds of thinking before each action, uniform (default 2 5)")
    p.add_argument("--stagger", type=float, default=1.0, help="seconds between session starts (default 1)")
    p.add_argument("--training-runs", type=int, default=3, help="sessions that start a training run (default 3)")
    p.add_argument("--train-steps", type=int, default=300, help="steps of each training run (default 300)")
    p.add_argument("--max-runs", type=int, help="$TP_MAX_TRAINING_RUNS for the server (default: the app's)")
    p.add_argument("--heartbeat", type=float, default=15.0, help="$TP_TRAINING_HEARTBEAT_S (default 15)")
    p.add_argument("--leave-after", type=float, default=5.0,
                   help="seconds into its run the first training session closes its tab")
    p.add_argument("--session-ttl", type=float, default=120.0,
                   help="server.disconnectedSessionTTL (Streamlit's default 120); waited for after the tabs close")
    p.add_argument("--action-timeout", type=float, default=60.0, help="seconds a rerun may take (default 60)")
    p.add_argument("--train-timeout", type=float, default=600.0, help="seconds a training run may take")
    p.add_argument("--port", type=int, help="server port (default: a free one)")
    p.add_argument("--headed", action="store_true", help="show the browser (needs a display)")
    p.add_argument("--browser-nice", type=int, default=0,
                   help="run Chromium under `nice -n N` so the server gets the CPU first, as if the "
                        "students' browsers ran on their own machines (default 0: equal priority)")
    p.add_argument("--server-cpus", type=cpu_list, metavar="LIST",
                   help="CPUs the server may run on, e.g. 0 (default: all)")
    p.add_argument("--browser-cpus", type=cpu_list, metavar="LIST",
                   help="CPUs Chromium and this driver may run on, e.g. 1 (default: all). With --server-cpus "
                        "0 the server has a core the 20 browsers cannot take, as on a class's server, where "
                        "the browsers run on the students' machines")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 2 sessions, 1 round, 1 action per page, 1 training run of 20 steps")
    p.add_argument("--out", type=Path, help="write the report: .json as JSON, anything else as Markdown")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.sessions, args.rounds, args.actions, args.duration = 2, 1, 1, None
        args.think, args.stagger, args.training_runs, args.train_steps = (0.1, 0.3), 0.5, 1, 10
        args.session_ttl = 3.0
    return args


def cpu_list(text: str) -> set[int]:
    """"0", "0,1" or "0-1" as a set of CPU numbers."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from app_lib.training_queue import DEFAULT_MAX_RUNS

    max_runs = args.max_runs or DEFAULT_MAX_RUNS
    run = Run(args=vars(args) | {"think": list(args.think), "out": str(args.out),
                                 "server_cpus": sorted(args.server_cpus or []),
                                 "browser_cpus": sorted(args.browser_cpus or [])})
    port = args.port or free_port()
    with tempfile.TemporaryDirectory(prefix="tp-load-") as tmp:
        run_log = Path(tmp) / "runs.jsonl"
        # MALLOC_ARENA_MAX as scripts/serve.sh sets it (unless the caller's environment says otherwise).
        env = {"MALLOC_ARENA_MAX": "2"} | os.environ | {"TP_USER_MODELS": str(Path(tmp) / "user_models"),
                                                        "TP_TRAINING_HEARTBEAT_S": str(args.heartbeat),
                                                        "TP_RUN_LOG": str(run_log)}
        run.args["malloc_arena_max"] = env["MALLOC_ARENA_MAX"]
        if args.max_runs:
            env["TP_MAX_TRAINING_RUNS"] = str(args.max_runs)
        env.pop("TP_MAX_TRAINING_RUNS", None) if not args.max_runs else None
        server = start_server(port, env, Path(tmp) / "server.log", args.session_ttl, args.server_cpus)
        if args.browser_cpus:  # this process, and so Playwright's driver and Chromium, which it starts
            os.sched_setaffinity(0, args.browser_cpus)
        sampler = Sampler(server.pid, run)
        sampler.start()
        start = time.monotonic()
        try:
            extra = asyncio.run(drive(args, f"http://127.0.0.1:{port}", run, max_runs))
        except KeyboardInterrupt:  # Ctrl-C: report what was measured so far
            extra = {"interrupted_at_s": round(run.now(), 1)}
            run.rounds_end_s = run.rounds_end_s or run.now()
        finally:
            sampler.stop()
            stop_server(server)
            log_tail = (Path(tmp) / "server.log").read_text(errors="replace")[-2000:]
            server_runs = read_run_log(run_log)
    report = build_report(run, sampler, extra, time.monotonic() - start, max_runs)
    report["server_runs"] = server_run_summary(server_runs)
    report["server_log_tail"] = log_tail
    text = markdown(report)
    print("## Load test\n\n" + text)
    print("\nJSON " + json.dumps({k: v for k, v in report.items() if k not in ("problems", "memory_mib")}
                                 | {"memory_mib": {k: v for k, v in report["memory_mib"].items() if k != "samples"}}))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) if args.out.suffix == ".json" else text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
