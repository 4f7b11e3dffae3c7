"""The user-model store: the class's shared folder of saved models, and the one place that writes to it.

    $TP_USER_MODELS/         (default user_models/ at the repo root)
      NAME/                  a checkpoint (model/checkpoint.py), listed as "user/NAME"

This module owns the names (the pattern, sanitising, a free name when one is taken), the
"user/" prefix, who may replace or delete a model, and saving, replacing, deleting and
listing. The Train page and uploads both save through `save_user_model`; the check of the
name, of the owner and the write happen under one lock, so two sessions cannot both take a name.

Who may replace or delete a model: the browser session that saved it. Everybody can open and
download every saved model (comparing models is part of the lesson). The app has no logins,
so "who" is the browser session: a random token kept in its `st.session_state`. Its SHA-256
tag (`owner_tag`), never the token, is written into the checkpoint's `meta.owner`. So:
- after a reload (a new session) a student can no longer replace their earlier models; they can
  still open and download them, and save under a new name. Refusing is the safe side;
- models with no tag (copied in by the teacher) are nobody's: the app never replaces or deletes them;
- a model saved here never keeps a sender's tag: `meta.owner` is always the saving session's.

No streamlit here: `app_lib.state.session_owner()` gives the current session's tag, and
`app_lib.checkpoints` caches loaded models.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from model import CheckpointError, peek, save_checkpoint
from model.checkpoint import checkpoint_folders

USER_MODELS_ENV = "TP_USER_MODELS"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "user_models"
USER_PREFIX = "user/"  # user names never clash with a shipped name, and a URL says which one it means
NAME_MAX = 48
NAME_PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_-]{{0,{NAME_MAX - 1}}}")
DEFAULT_NAME = "uploaded-model"
RESERVED_NAMES = {"con", "prn", "aux", "nul"} | {f"{p}{i}" for p in ("com", "lpt") for i in range(1, 10)}
OWNER_KEY = "owner"  # in the checkpoint's meta
# Held while a save or a delete checks a name and writes it: the check and the write are one step.
STORE_LOCK = threading.Lock()


class NameTakenError(CheckpointError):
    """A model with this name exists and replacing it was not asked for; `suggestion` is a free name."""

    def __init__(self, name: str, suggestion: str):
        super().__init__(f"a model called {name!r} already exists; {suggestion!r} is free.")
        self.name, self.suggestion = name, suggestion


class NotYoursError(CheckpointError):
    """A model this session did not save: it can be opened and downloaded, not replaced or deleted."""

    def __init__(self, name: str, suggestion: str | None = None):
        super().__init__(f"{name!r} was saved by someone else (another browser session): you can open and "
                         "download it, but only its owner can replace or delete it.")
        self.name, self.suggestion = name, suggestion


@dataclass(frozen=True)
class UserModel:
    """One folder in the store: its name there and its path."""

    name: str
    path: Path

    @property
    def entry_name(self) -> str:
        return user_entry_name(self.name)


# ------------------------------------------------------------------ names


def user_models_dir() -> Path:
    """Where the user models live: $TP_USER_MODELS, else user_models/ at the repo root."""
    configured = os.environ.get(USER_MODELS_ENV)
    return Path(configured).expanduser() if configured else DEFAULT_DIR


def user_entry_name(folder: str) -> str:
    """The name the picker and the URL use for the store's folder `folder`."""
    return USER_PREFIX + folder


def folder_of(entry_name: str) -> str:
    """The store folder an entry name points to ("user/x" -> "x"); other names are returned unchanged."""
    return entry_name.removeprefix(USER_PREFIX)


def sanitise_name(raw: str | None, fallback: str = DEFAULT_NAME) -> str:
    """A safe folder name: lowercase ASCII letters, digits, '-' and '_', at most NAME_MAX, never empty.

    Accents are dropped ("Modèle" -> "modele"), every other run of characters becomes '-', and
    leading or trailing '-', '_' go: "../../x" -> "x", "My Model.v2" -> "my-model-v2". Windows device
    names get a suffix ("CON" -> "con-model"); a name with nothing left is `fallback`.
    """
    ascii_text = unicodedata.normalize("NFKD", raw or "").encode("ascii", "ignore").decode("ascii").lower()
    name = re.sub(r"[^a-z0-9_-]+", "-", ascii_text)
    name = re.sub(r"-{2,}", "-", name).strip("-_")[:NAME_MAX].strip("-_")
    if not name:
        return fallback
    return f"{name}-model" if name in RESERVED_NAMES else name


def free_name(name: str, directory: Path | None = None) -> str:
    """`name`, or `name-2`, `name-3`, ... : the first that is not taken in the store."""
    directory = user_models_dir() if directory is None else Path(directory)
    candidate, number = name, 1
    while (directory / candidate).exists():
        number += 1
        suffix = f"-{number}"
        candidate = name[: NAME_MAX - len(suffix)] + suffix
    return candidate


def named_error(message: str, folder: Path, name: str) -> str:
    """A checkpoint's error as students see it: its name where the message gives the folder's server path.

    "/srv/models/foo/config.json is not valid JSON ..." -> "user/foo/config.json is not valid JSON ...":
    the reason stays whole, the server's folders stay private.
    """
    for path in sorted({str(folder), str(folder.resolve())}, key=len, reverse=True):
        message = message.replace(path, name)
    return message


# ------------------------------------------------------------------ ownership


def owner_tag(session_token: str) -> str:
    """The tag stored in a checkpoint's meta for this session token (the token never leaves the server)."""
    return hashlib.sha256(f"transformer-playground-owner:{session_token}".encode()).hexdigest()[:32]


def stored_owner(folder: Path) -> str | None:
    """meta.owner of the checkpoint in `folder`: the tag of the session that saved it, None when unknown."""
    try:
        owner = peek(folder).meta.get(OWNER_KEY)
    except CheckpointError:
        return None
    return owner if isinstance(owner, str) and owner else None


def is_owner(folder: Path, tag: str | None) -> bool:
    """True when `tag` saved the model in `folder` (untagged models are nobody's)."""
    return tag is not None and stored_owner(folder) == tag


def with_owner(meta: dict, tag: str | None) -> dict:
    """`meta` with its owner set to `tag` (or removed when tag is None): a sender's tag is never kept."""
    cleaned = {k: v for k, v in meta.items() if k != OWNER_KEY}
    return cleaned | ({OWNER_KEY: tag} if tag else {})


# ------------------------------------------------------------------ listing, saving, deleting


def list_user_models(directory: Path | None = None) -> list[UserModel]:
    """Every visible folder of the store, alphabetical (broken ones too: the picker says why)."""
    directory = user_models_dir() if directory is None else Path(directory)
    return [UserModel(path.name, path) for path in checkpoint_folders(directory)]


def check_may_save(folder: str, owner_tag: str | None, *, overwrite: bool = False,
                   directory: Path | None = None) -> None:
    """Refuse a save `owner_tag` may not make as `folder` now; return quietly when it may.

    CheckpointError for a name outside NAME_PATTERN, NameTakenError when it exists and overwrite
    is False, NotYoursError when another session (or nobody) saved it. Cheap: uploads ask before
    checking a large file, and save_user_model asks again under the lock.
    """
    if not NAME_PATTERN.fullmatch(folder or ""):
        raise CheckpointError(f"a name is 1-{NAME_MAX} letters, digits, '-' or '_', starting with a letter or digit.")
    directory = user_models_dir() if directory is None else Path(directory)
    target = directory / folder
    if not target.exists():
        return
    if not overwrite:
        raise NameTakenError(folder, free_name(folder, directory))
    if not is_owner(target, owner_tag):
        raise NotYoursError(folder, free_name(folder, directory))


def save_user_model(folder: str, model: nn.Module, tokenizer, meta: dict, owner_tag: str | None, *,
                    overwrite: bool = False, directory: Path | None = None,
                    dtype: torch.dtype = torch.float32) -> Path:
    """Save `model` as the store's `folder`, owned by `owner_tag`; returns its path.

    Refuses as check_may_save does; the check and the (atomic) write are one step under STORE_LOCK,
    so nothing a user saved is replaced unless they asked and it is theirs.
    """
    directory = user_models_dir() if directory is None else Path(directory)
    with STORE_LOCK:
        check_may_save(folder, owner_tag, overwrite=overwrite, directory=directory)
        return save_checkpoint(directory / folder, model, tokenizer, with_owner(meta, owner_tag), dtype=dtype,
                               overwrite=overwrite)


def delete_user_model(folder: str, owner_tag: str | None, *, directory: Path | None = None) -> None:
    """Delete the store's `folder` when `owner_tag` saved it (the picker never lists half of it).

    It is renamed into a hidden folder first, then removed. NotYoursError for anybody else's
    (or an untagged) model; FileNotFoundError when it is already gone.
    """
    directory = user_models_dir() if directory is None else Path(directory)
    if not NAME_PATTERN.fullmatch(folder or ""):
        raise NotYoursError(folder)  # never a path: the app saves only names of this pattern
    target = directory / folder
    with STORE_LOCK:
        if not target.exists():
            raise FileNotFoundError(f"{folder!r} is not there any more.")
        if not is_owner(target, owner_tag):
            raise NotYoursError(folder)
        trash = Path(tempfile.mkdtemp(prefix=f".{folder}.deleting-", dir=directory))
        target.rename(trash / folder)  # one rename: listed, or gone (hidden folders are never listed)
    shutil.rmtree(trash, ignore_errors=True)
