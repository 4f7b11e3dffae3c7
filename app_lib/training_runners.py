"""Where a run trains: a thread of the server process, or a worker process of its own.

Both take the same settings and the same two callbacks, and call them from their own thread:
`report(progress)` for every TrainEvent and AttentionSnapshot, then `ended(model, error)` exactly
once (a model on the CPU, or None and the text of what went wrong). `stop()` asks the run to end
between steps; `join()` waits for `ended` to have returned. No Streamlit here.

ProcessRunner starts `python -m app_lib.training_worker` with subprocess rather than
multiprocessing's "spawn": spawn re-runs `sys.modules["__main__"]` in the child, and while the
server runs a page Streamlit installs the page's script there, so the child would run the app.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from torch import nn

from explain.training import TrainSettings

from .training_run import Report, WorkerDone, WorkerFailed, describe_failure, model_from_bytes, train_task

Ended = Callable[[nn.Module | None, str | None], None]
ROOT = Path(__file__).resolve().parents[1]


class ThreadRunner:
    """Trains in a thread of this process (it shares the interpreter's lock with the page runs)."""

    def __init__(self, name: str, settings: TrainSettings, attention_every: int, report: Report, ended: Ended):
        self._settings, self._attention_every = settings, attention_every
        self._report, self._ended = report, ended
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            model = train_task(self._settings, self._stop, self._report, self._attention_every)
        except Exception as error:  # noqa: BLE001 - shown on the page; the server keeps running
            self._ended(None, describe_failure(error))
            return
        self._ended(model, None)


class ProcessRunner:
    """Trains in a worker process with `threads` torch threads; a server thread relays its messages."""

    def __init__(self, name: str, settings: TrainSettings, attention_every: int, report: Report, ended: Ended,
                 threads: int = 1):
        self._settings, self._attention_every, self._threads = settings, attention_every, threads
        self._report, self._ended = report, ended
        self._process: subprocess.Popen[str] | None = None
        self._stdin_lock = threading.Lock()
        self._stopping = self._told = False  # stop asked; the worker has its start line
        self._relay = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        read_fd, write_fd = os.pipe()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "app_lib.training_worker", str(write_fd)], stdin=subprocess.PIPE,
                pass_fds=(write_fd,), cwd=ROOT, env=env, text=True)
        except OSError:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # the worker holds the only write end: its exit ends our reads
        start = {"settings": self._settings.to_dict(), "attention_every": self._attention_every,
                 "threads": self._threads}
        self._inbox = Connection(read_fd, writable=False)
        with self._stdin_lock:
            self._send_line(json.dumps(start))
            self._told = True
            if self._stopping:
                self._send_line("stop")
        self._relay.start()

    def stop(self) -> None:
        with self._stdin_lock:
            self._stopping = True
            if self._told:
                self._send_line("stop")

    def join(self, timeout: float | None = None) -> bool:
        self._relay.join(timeout)
        return not self._relay.is_alive()

    def _send_line(self, line: str) -> None:
        """One line to the worker's stdin (caller holds _stdin_lock)."""
        try:
            self._process.stdin.write(line + "\n")
            self._process.stdin.flush()
        except (ValueError, OSError):  # closed, or a broken pipe: the worker has ended or is ending
            pass

    def _run(self) -> None:
        model, error = None, None
        try:
            model, error = self._relay_messages()
        except Exception as failure:  # noqa: BLE001 - a broken message is a failed run, not a dead server
            error = describe_failure(failure)
        finally:
            self._inbox.close()
            with self._stdin_lock:
                self._process.stdin.close()
            code = self._process.wait()
        if model is None and error is None:
            error = f"the training process ended unexpectedly ({exit_text(code)})."
        self._ended(model, error)

    def _relay_messages(self) -> tuple[nn.Module | None, str | None]:
        while True:
            try:
                message = pickle.loads(self._inbox.recv_bytes())  # from our own worker only
            except EOFError:
                return None, None
            if isinstance(message, WorkerDone):
                return model_from_bytes(self._settings, message.weights), None
            if isinstance(message, WorkerFailed):
                return None, message.error
            self._report(message)


def exit_text(code: int) -> str:
    """'exit code 3' or 'killed by signal 9'."""
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"
