"""Shared fixtures for the project's browser tests (headless Debian chromium via Playwright).

Fixtures:
    browser        session-wide chromium launched from /usr/bin/chromium (or $CHROMIUM_PATH).
    browser_log    what happened in the page: blocked URLs, page errors, dialogs, console errors.
    page_offline   a fresh page whose requests to any host other than localhost are aborted
                   and recorded in ``browser_log.blocked_urls``.
    artifacts_dir  tests/artifacts/ (git-ignored) for screenshots and generated HTML.
    static_server  base URL of an HTTP server on 127.0.0.1 serving ``artifacts_dir``.

Every browser test should carry ``@pytest.mark.browser``. A missing chromium is a
test failure, not a skip: CI installs it, so its absence is a broken environment.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
NON_NETWORK_SCHEMES = {"data", "blob", "about", "file"}
ARTIFACTS_DIR = Path(__file__).resolve().parents[1] / "artifacts"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``browser`` marker (pyproject.toml is owned elsewhere)."""
    config.addinivalue_line("markers", "browser: test drives a headless chromium via Playwright")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the item so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def is_local_url(url: str) -> bool:
    """True for URLs that never leave this machine (localhost, data:, blob:, about:, file:)."""
    parts = urlsplit(url)
    if parts.scheme in NON_NETWORK_SCHEMES:
        return True
    return (parts.hostname or "") in LOCAL_HOSTS


@dataclass
class BrowserLog:
    """Everything noteworthy a page did during a test."""

    blocked_urls: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        """Fail if anything was blocked, thrown, alerted or logged as a console error."""
        problems = {
            "blocked non-local requests": self.blocked_urls,
            "uncaught page errors": self.page_errors,
            "JS dialogs (alert/confirm/prompt)": self.dialogs,
            "console errors": self.console_errors,
        }
        found = {name: items for name, items in problems.items() if items}
        assert not found, f"browser reported problems: {found}"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """tests/artifacts/, created on demand; screenshots and generated pages go here."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR


@pytest.fixture(scope="session")
def browser():
    """A headless chromium shared by the whole session; fails if chromium is missing."""
    if not os.path.exists(CHROMIUM_PATH):
        pytest.fail(
            f"chromium not found at {CHROMIUM_PATH}. Install it with "
            "`apt-get install -y chromium chromium-driver` (or set $CHROMIUM_PATH).",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM_PATH, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def browser_log() -> BrowserLog:
    """Record of blocked requests, page errors, dialogs and console errors for one test."""
    return BrowserLog()


@pytest.fixture
def page_offline(browser, browser_log: BrowserLog, artifacts_dir: Path, request: pytest.FixtureRequest):
    """A fresh page that may only reach localhost; everything else is aborted and logged.

    Dialogs are dismissed and recorded. On test failure a screenshot is saved to
    ``artifacts_dir/failures/``.
    """
    context = browser.new_context(service_workers="block", viewport={"width": 1100, "height": 800})
    context.route("**/*", functools.partial(_route_local_only, browser_log))
    context.route_web_socket(
        lambda url: not is_local_url(url), functools.partial(_refuse_web_socket, browser_log)
    )
    page = context.new_page()
    page.on("pageerror", lambda error: browser_log.page_errors.append(str(error)))
    page.on("dialog", functools.partial(_dismiss_dialog, browser_log))
    page.on("console", functools.partial(_record_console_error, browser_log))
    yield page
    _screenshot_if_failed(page, request.node, artifacts_dir)
    context.close()


@pytest.fixture(scope="session")
def static_server(artifacts_dir: Path) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT``) of a quiet HTTP server serving ``artifacts_dir``."""
    handler = functools.partial(_QuietHandler, directory=str(artifacts_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    """Static file handler that does not write an access log to stderr."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - signature fixed by base class
        return


def _route_local_only(log: BrowserLog, route) -> None:
    """Let local requests through; abort and record everything else."""
    url = route.request.url
    if is_local_url(url):
        route.continue_()
    else:
        log.blocked_urls.append(url)
        route.abort()


def _refuse_web_socket(log: BrowserLog, ws_route) -> None:
    """Close a WebSocket to a non-local host without connecting, and record it."""
    log.blocked_urls.append(ws_route.url)
    ws_route.close()


def _dismiss_dialog(log: BrowserLog, dialog) -> None:
    """Record an alert/confirm/prompt and dismiss it so the page does not hang."""
    log.dialogs.append(f"{dialog.type}: {dialog.message}")
    dialog.dismiss()


def _record_console_error(log: BrowserLog, message) -> None:
    """Keep console messages of type 'error' (CSP violations, failed loads, ...)."""
    if message.type == "error":
        log.console_errors.append(message.text)


def _screenshot_if_failed(page, node: pytest.Item, artifacts_dir: Path) -> None:
    """Save a full-page screenshot to artifacts_dir/failures/ when the test body failed."""
    report = getattr(node, "rep_call", None)
    if report is None or not report.failed:
        return
    failures = artifacts_dir / "failures"
    failures.mkdir(exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", node.nodeid)[-150:]
    try:
        page.screenshot(path=str(failures / f"{name}.png"), full_page=True)
    except Exception:  # a crashed page must not mask the real failure
        pass
