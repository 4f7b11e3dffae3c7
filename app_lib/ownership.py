"""Who may replace or delete a model in the shared user folder: the browser session that saved it.

A class shares one server and one user folder (`$TP_USER_MODELS`). Everybody can open and download
every saved model (comparing models is part of the lesson), but only the session that saved a model
can replace it or delete it. The app has no logins, so "who" is the browser session: a random token
kept in that session's `st.session_state`. Its SHA-256 tag, never the token itself, is written into
the checkpoint's metadata (`meta.owner`) when the model is saved or uploaded.

What follows from that, on purpose:
- after a reload (a new session) a student can no longer replace their earlier models; they can
  still open and download them, and save under a new name. Refusing is the safe side: nothing
  anybody saved is replaced or deleted except by the session that saved it;
- models with no tag (copied into the folder by the teacher, or saved before tags existed) are
  nobody's: the app never replaces or deletes them; the teacher manages them on disk;
- an uploaded zip cannot bring an owner with it: the upload's `meta.owner` is always replaced by
  the uploader's tag.

No streamlit here: `app_lib.state.session_owner()` gives the current session's tag.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
from pathlib import Path

from model import CheckpointError

OWNER_KEY = "owner"  # in the checkpoint's meta
CONFIG_FILE = "config.json"
# Held while a save, an upload or a delete checks a name and writes it: the check and the write are one step.
USER_FOLDER_LOCK = threading.Lock()


class NotYoursError(CheckpointError):
    """A model this session did not save: it can be opened and downloaded, not replaced or deleted."""

    def __init__(self, name: str, suggestion: str | None = None):
        super().__init__(f"{name!r} was saved by someone else (another browser session): you can open and "
                         "download it, but only its owner can replace or delete it.")
        self.name, self.suggestion = name, suggestion


def owner_tag(session_token: str) -> str:
    """The tag stored in a checkpoint's meta for this session token (the token never leaves the server)."""
    return hashlib.sha256(f"transformer-playground-owner:{session_token}".encode()).hexdigest()[:32]


def stored_owner(folder: Path) -> str | None:
    """meta.owner of the checkpoint in `folder`: the tag of the session that saved it, None when unknown."""
    try:
        document = json.loads((Path(folder) / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    meta = document.get("meta") if isinstance(document, dict) else None
    owner = meta.get(OWNER_KEY) if isinstance(meta, dict) else None
    return owner if isinstance(owner, str) and owner else None


def is_owner(folder: Path, tag: str | None) -> bool:
    """True when `tag` saved the model in `folder` (untagged models are nobody's)."""
    return tag is not None and stored_owner(folder) == tag


def check_may_replace(folder: Path, tag: str | None, suggestion: str | None = None) -> None:
    """NotYoursError unless `folder` is free or was saved by `tag`."""
    if Path(folder).exists() and not is_owner(folder, tag):
        raise NotYoursError(Path(folder).name, suggestion)


def with_owner(meta: dict, tag: str | None) -> dict:
    """`meta` with its owner set to `tag` (or removed when tag is None): an upload never keeps the sender's."""
    cleaned = {k: v for k, v in meta.items() if k != OWNER_KEY}
    return cleaned | ({OWNER_KEY: tag} if tag else {})


def delete_model(folder: Path, tag: str | None) -> None:
    """Delete a model this session saved: renamed to a hidden folder first, so the picker never sees half of it.

    NotYoursError for anybody else's (or an untagged) model; FileNotFoundError when it is already gone.
    """
    folder = Path(folder)
    with USER_FOLDER_LOCK:
        if not folder.exists():
            raise FileNotFoundError(f"{folder.name!r} is not there any more.")
        if not is_owner(folder, tag):
            raise NotYoursError(folder.name)
        trash = Path(tempfile.mkdtemp(prefix=f".{folder.name}.deleting-", dir=folder.parent))
        folder.rename(trash / folder.name)  # one rename: listed, or gone (hidden folders are never listed)
    shutil.rmtree(trash, ignore_errors=True)
