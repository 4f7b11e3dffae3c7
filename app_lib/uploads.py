"""Checkpoint uploads: bytes from a stranger in, a checked checkpoint in the user's folder out.

Accepted: one .zip holding config.json + model.safetensors (at its top or inside one folder),
or those two files uploaded together. Checks run cheapest first, and nothing is written to
disk before the sizes are known to be sane:

  1. sizes: an upload (all its files) is at most MAX_UPLOAD_MB, checked before reading it;
     a .pt / .bin / .pkl file, or bytes that start like a pickle, are refused by name or by
     their first bytes, never opened (nothing here or in model/ calls torch.load)
  2. a zip: member count, every member name (no absolute path, no '..') and the total
     uncompressed size come from its directory before anything is decompressed; the two
     members are read into memory, never extracted to a path taken from the archive
  3. config.json: JSON, our format (a Hugging Face config gets its own message), layers capped
  4. the two files are written under fixed names into a hidden staging folder and loaded with
     model.load_checkpoint: strict key and shape matching, the model sized on the meta device
     before any memory is allocated for it
  5. saved through the user-model store (app_lib.user_models.save_user_model): atomic, an
     existing NAME replaced only with overwrite=True (NameTakenError offers a free name) and
     only by the session that saved it (NotYoursError)

No streamlit here: pages/my_models.py draws, this module decides.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol, Sequence

import torch

from model import CheckpointError, LoadedCheckpoint, load_checkpoint
from model.checkpoint import CONFIG_FILE, FORMAT, PICKLE_SUFFIXES, WEIGHTS_FILE

from .user_models import DEFAULT_NAME, check_may_save, named_error, sanitise_name, save_user_model, user_entry_name

MAX_UPLOAD_MB = 64  # matches server.maxUploadSize in .streamlit/config.toml
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
MAX_UNPACKED_BYTES = 2 * MAX_UPLOAD_BYTES  # weights barely compress; more than this is a zip bomb
MAX_ZIP_MEMBERS = 16
MAX_LAYERS = 48  # a classroom model; a config asking for more is refused before a model is built
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class UploadError(CheckpointError):
    """An upload that is refused; the message says what is wrong with it and what to upload instead."""


class UploadedFile(Protocol):
    """What Streamlit's UploadedFile offers and this module uses."""

    name: str
    size: int

    def getvalue(self) -> bytes: ...


@dataclass(frozen=True)
class UploadedBytes:
    """An upload held as bytes (tests, scripts): the same interface as Streamlit's UploadedFile."""

    name: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def getvalue(self) -> bytes:
        return self.data


@dataclass(frozen=True)
class Installed:
    """A checkpoint saved from an upload: its folder name, path and what was in it."""

    name: str
    path: Path
    checkpoint: LoadedCheckpoint
    ignored: tuple[str, ...] = field(default=())

    @property
    def entry_name(self) -> str:
        return user_entry_name(self.name)


# ------------------------------------------------------------------ reading an upload


def default_name(files: Sequence[UploadedFile]) -> str:
    """The name a zip upload suggests (its file name); the two-file upload suggests DEFAULT_NAME."""
    zips = [f for f in files if f.name.lower().endswith(".zip")]
    if len(zips) == 1:
        return sanitise_name(_base_name(zips[0].name).rsplit(".", 1)[0])
    return DEFAULT_NAME


def _base_name(name: str) -> str:
    return re.split(r"[\\/]", name)[-1]


def read_upload(files: Sequence[UploadedFile]) -> tuple[bytes, bytes, tuple[str, ...]]:
    """(config.json bytes, model.safetensors bytes, ignored zip members) or UploadError saying why not."""
    if not files:
        raise UploadError("nothing was uploaded: choose a .zip, or config.json and model.safetensors.")
    total = sum(int(f.size) for f in files)
    if total > MAX_UPLOAD_BYTES:
        raise UploadError(f"the upload is {total / 2**20:.1f} MB; the limit is {MAX_UPLOAD_MB} MB.")
    for f in files:
        if _base_name(f.name).lower().endswith(PICKLE_SUFFIXES):
            raise UploadError(_pickle_message(f.name))
    zips = [f for f in files if f.name.lower().endswith(".zip")]
    if zips:
        if len(files) > 1:
            raise UploadError("upload one .zip on its own, or the two files config.json and model.safetensors.")
        return _read_zip(zips[0].name, zips[0].getvalue())
    configs = [f for f in files if f.name.lower().endswith(".json")]
    weights = [f for f in files if f.name.lower().endswith(".safetensors")]
    others = sorted(f.name for f in files if f not in configs and f not in weights)
    if others or len(configs) != 1 or len(weights) != 1:
        raise UploadError(f"expected {CONFIG_FILE} and {WEIGHTS_FILE} (one of each) or one .zip; got "
                          f"{', '.join(sorted(f.name for f in files))}.")
    return configs[0].getvalue(), _checked_weights(weights[0].name, weights[0].getvalue()), ()


def _pickle_message(name: str) -> str:
    return (f"{name} is a PyTorch pickle (torch.save). Pickles are never opened here, because unpickling can "
            f"run any code hidden in the file. Upload a checkpoint saved by this app ({CONFIG_FILE} + "
            f"{WEIGHTS_FILE}), e.g. from the Train page or `python -m model.train`.")


def _checked_weights(name: str, data: bytes) -> bytes:
    """The weights bytes, unless they start like a pickle instead of a safetensors header."""
    safetensors_like = len(data) > 8 and data[8:9] == b"{"  # 8-byte header length, then a JSON header
    if not safetensors_like and (data[:1] == b"\x80" or data[:4] == b"PK\x03\x04"):
        raise UploadError(f"{name} is not safetensors: it starts like a PyTorch pickle. " + _pickle_message(name))
    return data


def _read_zip(name: str, data: bytes) -> tuple[bytes, bytes, tuple[str, ...]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise UploadError(f"{name} is not a zip archive, or it is damaged ({error}).") from error
    if any(PurePosixPath(m.filename).name == "data.pkl" for m in members):  # what torch.save writes
        raise UploadError(_pickle_message(name))
    if len(members) > MAX_ZIP_MEMBERS:
        raise UploadError(f"{name} holds {len(members)} entries; a checkpoint zip holds {CONFIG_FILE} and "
                          f"{WEIGHTS_FILE} (at most {MAX_ZIP_MEMBERS} entries are accepted).")
    for member in members:
        _check_member_name(name, member.filename)
    unpacked = sum(m.file_size for m in members)
    if unpacked > MAX_UNPACKED_BYTES:
        raise UploadError(f"{name} would unpack to {unpacked / 2**20:,.0f} MB; the limit is "
                          f"{MAX_UNPACKED_BYTES / 2**20:.0f} MB. Refused without unpacking it.")
    files = [m for m in members if not m.is_dir() and not _ignorable(m.filename)]
    config = _one_member(name, files, CONFIG_FILE)
    weights = _one_member(name, files, WEIGHTS_FILE)
    folder = PurePosixPath(config.filename).parent
    if folder != PurePosixPath(weights.filename).parent or len(folder.parts) > 1:
        raise UploadError(f"in {name}, {CONFIG_FILE} and {WEIGHTS_FILE} must sit side by side, at the top of "
                          f"the zip or inside one folder.")
    ignored = tuple(sorted(m.filename for m in files if m not in (config, weights)))
    return (_read_member(name, archive, config),
            _checked_weights(weights.filename, _read_member(name, archive, weights)), ignored)


def _check_member_name(name: str, member: str) -> None:
    parts = re.split(r"[\\/]", member)
    if member.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", member) or "\x00" in member:
        raise UploadError(f"{name} contains an entry with an absolute path ({member!r}); refused.")
    if ".." in parts:
        raise UploadError(f"{name} contains an entry that points outside the archive ({member!r}); refused.")


def _ignorable(member: str) -> bool:
    """macOS Finder's __MACOSX/ copies and hidden files such as .DS_Store."""
    path = PurePosixPath(member)
    return path.parts[0] == "__MACOSX" or path.name.startswith(".")


def _one_member(name: str, files: list[zipfile.ZipInfo], wanted: str) -> zipfile.ZipInfo:
    found = [m for m in files if PurePosixPath(m.filename).name == wanted]
    if len(found) == 1:
        return found[0]
    if found:
        raise UploadError(f"{name} holds {len(found)} files called {wanted}; upload one checkpoint at a time.")
    pickles = [m.filename for m in files if m.filename.lower().endswith(PICKLE_SUFFIXES)]
    if pickles:
        raise UploadError(_pickle_message(pickles[0]))
    listed = ", ".join(m.filename for m in files[:5]) or "nothing"
    raise UploadError(f"{name} has no {wanted} (it holds {listed}); a checkpoint zip holds {CONFIG_FILE} and "
                      f"{WEIGHTS_FILE}.")


def _read_member(name: str, archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes:
    """The member's bytes, reading no more than its declared size (a lying header cannot inflate it)."""
    if member.flag_bits & 0x1:
        raise UploadError(f"{member.filename} in {name} is password-protected; upload an unencrypted zip.")
    try:
        with archive.open(member) as stream:
            data = stream.read(member.file_size + 1)
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, RuntimeError) as error:
        raise UploadError(f"{member.filename} in {name} cannot be unpacked ({error}).") from error
    if len(data) > member.file_size:
        raise UploadError(f"{member.filename} in {name} is larger than the zip says; refused.")
    return data


# ------------------------------------------------------------------ checking and saving


def check_config(config: bytes) -> dict:
    """The parsed config.json; UploadError for something that is clearly not one of ours."""
    try:
        document = json.loads(config.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UploadError(f"{CONFIG_FILE} is not valid JSON ({error}).") from error
    if not isinstance(document, dict):
        raise UploadError(f"{CONFIG_FILE} is not a JSON object, so not a Transformer Playground config.")
    if document.get("format") != FORMAT and ("model_type" in document or "architectures" in document):
        raise UploadError(f"{CONFIG_FILE} is a Hugging Face config (model_type {document.get('model_type')!r}). "
                          f"This app opens only checkpoints saved by Transformer Playground.")
    layers = (document.get("config") or {}).get("n_layers") if isinstance(document.get("config"), dict) else None
    if isinstance(layers, int) and layers > MAX_LAYERS:
        raise UploadError(f"{CONFIG_FILE} asks for {layers} layers; uploads are limited to {MAX_LAYERS}.")
    return document


def validate(config: bytes, weights: bytes, staging: Path) -> LoadedCheckpoint:
    """Write the two files under fixed names into `staging` and load them strictly; CheckpointError if wrong."""
    check_config(config)
    return _load_staged(config, weights, staging)


def _load_staged(config: bytes, weights: bytes, staging: Path) -> LoadedCheckpoint:
    (staging / CONFIG_FILE).write_bytes(config)
    (staging / WEIGHTS_FILE).write_bytes(weights)
    try:
        checkpoint = load_checkpoint(staging, max_parameters=len(weights))  # every stored number takes >= 1 byte
    except CheckpointError as error:  # said of the upload, not of the staging folder on the server
        raise UploadError(named_error(str(error), staging, "upload")) from error
    if checkpoint.meta.get("task"):
        try:
            checkpoint.task  # noqa: B018 - builds the task object, refusing one this app cannot run
        except (ValueError, TypeError, KeyError) as error:
            raise UploadError(f"the checkpoint's task (meta.task) is not one this app knows: {error}") from error
    return checkpoint


def install_upload(files: Sequence[UploadedFile], directory: Path, name: str | None = None,
                   overwrite: bool = False, owner: str | None = None) -> Installed:
    """Check an upload and save it in the store as NAME (from `name`, else the file name, sanitised).

    `owner` is the uploading session's tag (app_lib.user_models), stored as meta.owner.
    Raises UploadError (or CheckpointError from the loader) saying what is wrong, and
    NameTakenError / NotYoursError from the store, checked before the upload is read and again
    when it is saved.
    """
    folder = sanitise_name(name) if name and name.strip() else default_name(files)
    directory = Path(directory)
    check_may_save(folder, owner, overwrite=overwrite, directory=directory)  # before reading a large file
    config, weights, ignored = read_upload(files)
    document = check_config(config)
    weights_info = document.get("weights") if isinstance(document.get("weights"), dict) else {}
    dtype = DTYPES.get(str(weights_info.get("dtype")), torch.float32)  # keep the precision it was saved in
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".uploading-", dir=directory) as staging:
            checkpoint = _load_staged(config, weights, Path(staging))
            meta = checkpoint.meta | {"uploaded_from": ", ".join(_base_name(f.name) for f in files)}
            path = save_user_model(folder, checkpoint.model, checkpoint.tokenizer, meta, owner,
                                   overwrite=overwrite, directory=directory, dtype=dtype)
    except OSError as error:
        raise UploadError(f"the upload could not be stored in {directory} ({error}).") from error
    return Installed(folder, path, checkpoint, ignored)


def zip_checkpoint(path: Path) -> bytes:
    """A checkpoint folder as zip bytes (NAME/config.json, NAME/model.safetensors), ready to upload again."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for file_name in (CONFIG_FILE, WEIGHTS_FILE):
            archive.write(path / file_name, f"{path.name}/{file_name}")
    return buffer.getvalue()
