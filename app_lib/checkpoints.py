"""Which checkpoints the app can open, and loading them once per process.

Two places are scanned on every run (cheap: directory listings and one small JSON read each):

    checkpoints/            shipped with the repo              source "shipped", name = folder name
    $TP_USER_MODELS         the user's own (default user_models/) source "user",    name = "user/" + folder

User names carry the "user/" prefix so they never clash with a shipped name and a URL says
which one it means. `load_model` accepts only names (or paths) that `list_checkpoints`
returned: a query parameter such as `../../etc/passwd` is refused with CheckpointError,
never turned into a path. Loaded models are cached with `st.cache_resource`, shared by every
session: callers must treat them as read-only (no training, no changing weights or modes).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import streamlit as st

from model import CheckpointError, LoadedCheckpoint, load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DIR = ROOT / "checkpoints"
USER_MODELS_ENV = "TP_USER_MODELS"
USER_PREFIX = "user/"
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
# Shipped checkpoints in tour order; others follow alphabetically.
PREFERRED_ORDER = ("reversal-mha", "reversal-gqa", "reversal-mqa", "dates", "shakespeare-mha", "shakespeare-mqa")
MAX_CONFIG_BYTES = 20 * 1024 * 1024


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
        text = self.name.removeprefix(USER_PREFIX) + (" (saved)" if self.source == "user" else "")
        return f"{text} (broken)" if self.error else text


def user_models_dir() -> Path:
    """Where the user's own checkpoints live: $TP_USER_MODELS, else user_models/ at the repo root."""
    configured = os.environ.get(USER_MODELS_ENV)
    return Path(configured).expanduser() if configured else ROOT / "user_models"


def user_entry_name(folder: str) -> str:
    """The entry name of the user checkpoint saved in user_models_dir() / folder."""
    return USER_PREFIX + folder


def list_checkpoints() -> list[CheckpointEntry]:
    """Shipped checkpoints (tour order), then the user's (alphabetical); broken ones included with a reason."""
    shipped = [_entry(path.name, path, "shipped") for path in _folders(SHIPPED_DIR)]
    rank = {name: i for i, name in enumerate(PREFERRED_ORDER)}
    shipped.sort(key=lambda e: (rank.get(e.name, len(rank)), e.name))
    user = [_entry(user_entry_name(path.name), path, "user") for path in sorted(_folders(user_models_dir()))]
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
    return _load_cached(str(entry.path), _stamp(entry.path))


@st.cache_resource(show_spinner="Loading the checkpoint...", max_entries=16)
def _load_cached(path: str, stamp: tuple) -> LoadedCheckpoint:
    """Load once per (folder, file times): a checkpoint saved again under the same name is reloaded."""
    return load_checkpoint(path)


def _folders(directory: Path) -> list[Path]:
    """Visible sub-folders (save_checkpoint stages into hidden '.NAME.saving-*' folders)."""
    try:
        return [p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []


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
    return CheckpointEntry(name, path, source, _quick_problem(path))


def _quick_problem(path: Path) -> str | None:
    """Why a folder is certainly not a loadable checkpoint, from its files alone (None if it may be)."""
    config = path / CONFIG_FILE
    if not config.is_file():
        return f"{path.name} has no {CONFIG_FILE}: it is not a Transformer Playground checkpoint."
    try:
        if config.stat().st_size > MAX_CONFIG_BYTES:
            return f"{path.name}/{CONFIG_FILE} is too large to be a checkpoint config."
        document = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"{path.name}/{CONFIG_FILE} cannot be read ({error})."
    if not isinstance(document, dict) or document.get("format") != "transformer-playground":
        return f"{path.name}/{CONFIG_FILE} is not a Transformer Playground checkpoint config."
    if not (path / WEIGHTS_FILE).is_file():
        return f"{path.name} has no {WEIGHTS_FILE} (the weights are missing)."
    return None


def version_of(name: str) -> tuple:
    """A cache key part that changes when a listed checkpoint's files change (() for unknown names)."""
    entry = find_entry(name)
    return () if entry is None else (str(entry.path), _stamp(entry.path))
