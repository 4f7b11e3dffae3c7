"""All students in one Chromium, started `--stagger` seconds apart, until every one is done."""

from __future__ import annotations

import argparse
import asyncio

from .browser import CHROMIUM_ARGS, chromium_executable
from .records import Run
from .student import Student


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
                await s.safely(s.train(shared))
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
