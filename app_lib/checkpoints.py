"""Which checkpoints the app can open, and loading them once per process.

Two places are scanned on every run (cheap: directory listings and `model.peek` of each config.json):

    checkpoints/            shipped with the repo              source "shipped", name = folder name
    the user-model store    app_lib/user_models.py             source "user",    name = "user/" + folder

`load_model` accepts only names (or paths) that `list_checkpoints` returned: a query parameter
such as `../../etc/passwd` is refused with CheckpointError, never turned into a path. Loaded
models are cached with `st.cache_resource`, shared by every session: callers must treat them as
read-only (no training, no changing weights or modes).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import streamlit as st

from model import CheckpointError, LoadedCheckpoint, load_checkpoint, peek
from model.checkpoint import CONFIG_FILE, WEIGHTS_FILE, checkpoint_folders

from .user_models import USER_PREFIX, folder_of, list_user_models, named_error, user_entry_name, user_models_dir

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DIR = ROOT / "checkpoints"
# Shipped checkpoints in tour order; others follow alphabetically.
PREFERRED_ORDER = ("reversal-mha", "reversal-gqa", "reversal-mqa", "dates", "shakespeare-mha", "shakespeare-mqa")
__all__ = ["USER_PREFIX", "CheckpointEntry", "find_entry", "list_checkpoints", "load_model", "user_entry_name",
           "user_models_dir", "version_of"]


@dataclass(frozen=True)
class CheckpointEntry:
    """One checkpoint folder the picker lists; `error` says why it cannot be opened (None if it can)."""

    name: str
    path: Path
    source: Literal["shipped", "user"]
    error: str | None = None

    @property
    def label(self) -> str:
        """A short name for lists: saved models marked as saved (by anyone in the class), broken ones as broken."""
        text = folder_of(self.name) + (" (saved)" if self.source == "user" else "")
        return f"{text} (broken)" if self.error else text


def list_checkpoints() -> list[CheckpointEntry]:
    """Shipped checkpoints (tour order), then the user's (alphabetical); broken ones included with a reason."""
    shipped = [_entry(path.name, path, "shipped") for path in checkpoint_folders(SHIPPED_DIR)]
    rank = {name: i for i, name in enumerate(PREFERRED_ORDER)}
    shipped.sort(key=lambda e: (rank.get(e.name, len(rank)), e.name))
    user = [_entry(saved.entry_name, saved.path, "user") for saved in list_user_models()]
    return shipped + user


def find_entry(name_or_path: str | os.PathLike) -> CheckpointEntry | None:
    """The listed entry with this name, or whose folder is this path; None for anything else."""
    entries = list_checkpoints()
    for entry in entries:
        if isinstance(name_or_path, str) and entry.name == name_or_path:
            return entry
    try:
        wanted = Path(name_or_path).resolve()
    except (OSError, ValueError, TypeError):
        return None
    return next((e for e in entries if e.path.resolve() == wanted), None)


def load_model(name_or_path: str | os.PathLike) -> LoadedCheckpoint:
    """The loaded checkpoint of a listed entry (cached, shared, read-only); CheckpointError otherwise."""
    entry = find_entry(name_or_path)
    if entry is None:
        raise CheckpointError(f"there is no checkpoint called {str(name_or_path)!r}; pick one from the list.")
    if entry.error:
        raise CheckpointError(entry.error)
    try:
        return _load_cached(str(entry.path), _stamp(entry.path))
    except CheckpointError as error:  # e.g. damaged weights, which listing does not open
        raise CheckpointError(named_error(str(error), entry.path, entry.name)) from error


@st.cache_resource(show_spinner="Loading the checkpoint...", max_entries=16)
def _load_cached(path: str, stamp: tuple) -> LoadedCheckpoint:
    """Load once per (folder, file times): a checkpoint saved again under the same name is reloaded."""
    return load_checkpoint(path)


def _stamp(path: Path) -> tuple:
    """File sizes and modification times of a checkpoint folder's two files."""
    stamp = []
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        try:
            info = (path / name).stat()
            stamp.append((info.st_size, info.st_mtime_ns))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


def _entry(name: str, path: Path, source: Literal["shipped", "user"]) -> CheckpointEntry:
    return CheckpointEntry(name, path, source, _quick_problem(name, str(path), _stamp(path)))


@functools.lru_cache(maxsize=256)
def _quick_problem(name: str, path: str, stamp: tuple) -> str | None:
    """Why the folder of entry `name` is certainly not a loadable checkpoint, from config.json alone (None if
    it may be), naming the entry, never the folder's path.

    Cached per file times: the picker lists every checkpoint on every run.
    """
    folder = Path(path)
    if not (folder / CONFIG_FILE).is_file():
        return f"{name} has no {CONFIG_FILE}: it is not a Transformer Playground checkpoint."
    try:
        peek(folder)
    except CheckpointError as error:
        return named_error(str(error), folder, name)
    if not (folder / WEIGHTS_FILE).is_file():
        return f"{name} has no {WEIGHTS_FILE} (the weights are missing)."
    return None


def version_of(name: str) -> tuple:
    """A cache key part that changes when a listed checkpoint's files change (() for unknown names)."""
    entry = find_entry(name)
    return () if entry is None else (str(entry.path), _stamp(entry.path))
