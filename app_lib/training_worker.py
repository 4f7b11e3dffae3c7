"""The worker process of one training run: `python -m app_lib.training_worker FD`.

Protocol (the server side is ProcessRunner in training_runners.py):
    stdin, first line   JSON {"settings": TrainSettings.to_dict(), "attention_every": int, "threads": int}
    stdin, later        "stop" (or the end of stdin: the server is gone): stop between steps
    FD (a pipe)         pickled messages, one per Connection.send_bytes: TrainEvent and
                        AttentionSnapshot records while training, then one WorkerDone (the weights
                        as a safetensors document; the model itself is never pickled) or WorkerFailed

It imports no Streamlit: the process starts in ~2 s (torch) and trains with `threads` torch threads.
"""

from __future__ import annotations

import json
import pickle
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TextIO

import torch

from explain.training import TrainSettings

from .training_run import (
    Message,
    StopFlag,
    WorkerDone,
    WorkerFailed,
    describe_failure,
    train_task,
    weights_to_bytes,
)


def run(settings: TrainSettings, attention_every: int, stop: StopFlag, send: Callable[[Message], None]) -> None:
    """Train and send every event, then the weights; a failure is sent as text, never raised."""
    try:
        model = train_task(settings, stop, send, attention_every)
    except Exception as error:  # noqa: BLE001 - shown on the page; the server never sees the traceback
        send(WorkerFailed(describe_failure(error)))
        return
    send(WorkerDone(weights_to_bytes(model)))


def watch_for_stop(lines: TextIO, stop: threading.Event) -> None:
    """Set `stop` on a "stop" line or at the end of the input."""
    for line in lines:
        if line.strip() == "stop":
            break
    stop.set()


def main(argv: list[str]) -> int:
    out = Connection(int(argv[0]), readable=False)
    start = json.loads(sys.stdin.readline())
    torch.set_num_threads(int(start["threads"]))
    stop = threading.Event()
    threading.Thread(target=watch_for_stop, args=(sys.stdin, stop), daemon=True).start()
    try:
        run(TrainSettings.from_dict(start["settings"]), int(start["attention_every"]), stop,
            lambda message: out.send_bytes(pickle.dumps(message)))
    except (BrokenPipeError, ConnectionError):
        return 1  # the server is gone: nobody to report to
    finally:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
