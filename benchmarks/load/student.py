"""One student: a browser context that opens the app, changes widgets at random and trains a model."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import time

from .browser import EXTERNAL, INIT_SCRIPT, PROBE_404, RUN_DONE_JS, TRAIN_STATUS_JS
from .records import Action, Problem, Run, TrainingRecord
from .server import ROOT

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
        await self.page.get_by_label("steps (at most)", exact=True).fill(str(self.args.train_steps))
        # off: a run that stopped once learned (after a few seconds) would leave no run waiting for a slot
        await self.page.locator("label").filter(has_text="Stop when learned").click()
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
