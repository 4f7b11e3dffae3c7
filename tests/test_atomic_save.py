"""A save that fails part-way (full disk, failed rename, Ctrl-C) keeps the previous checkpoint whole.

Each test saves version 1 of a checkpoint, makes the next save fail at one point, and checks
that version 1 still loads, that no half-written folder is visible to the picker (app_lib's
list_checkpoints, which skips hidden staging folders), and that the error says what happened.
"""

from __future__ import annotations

import errno
import os

import pytest
from conftest import tiny_gpt

import model.checkpoint as checkpoint_module
from app_lib.checkpoints import list_checkpoints
from app_lib.training_job import JobQueue, TrainingJob, TrainSettings
from app_lib.user_models import save_user_model
from model import CheckpointError, load_checkpoint, save_checkpoint

FULL_DISK = OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """An empty user-models folder the picker reads (TP_USER_MODELS)."""
    folder = tmp_path / "user_models"
    monkeypatch.setenv("TP_USER_MODELS", str(folder))
    return folder


@pytest.fixture
def previous(user_dir):
    """Version 1 of the checkpoint `m`, saved normally."""
    return save_checkpoint(user_dir / "m", tiny_gpt(), meta={"version": 1})


def assert_only_version_one(user_dir):
    assert load_checkpoint(user_dir / "m").meta["version"] == 1
    assert sorted(p.name for p in user_dir.iterdir()) == ["m"]  # no staging or backup folder left, hidden or not
    assert [(e.name, e.error) for e in list_checkpoints() if e.source == "user"] == [("user/m", None)]


def failing_save_file(*args, **kwargs):
    raise FULL_DISK


def failing_write_text(self, *args, **kwargs):
    raise FULL_DISK


def rename_failing_on(call_number: int):
    """An os.replace that fails on its n-th call (1: moving the old folder aside, 2: moving the new one in)."""
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append((src, dst))
        if len(calls) == call_number:
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    return replace


@pytest.mark.parametrize("where", ["weights (disk full)", "config (disk full)", "moving the old folder aside",
                                   "moving the new folder in"])
def test_failed_overwrite_keeps_the_previous_version(previous, user_dir, monkeypatch, where):
    with monkeypatch.context() as patch, pytest.raises(CheckpointError) as caught:
        if where == "weights (disk full)":
            patch.setattr(checkpoint_module, "save_file", failing_save_file)
        elif where == "config (disk full)":
            patch.setattr(checkpoint_module.Path, "write_text", failing_write_text)
        else:
            patch.setattr(checkpoint_module.os, "replace", rename_failing_on(1 if "aside" in where else 2))
        save_checkpoint(previous, tiny_gpt(), meta={"version": 2}, overwrite=True)
    message = str(caught.value)
    assert message.startswith("Saving m failed") and "the previous version of m is intact" in message
    if "disk full" in where:
        assert "the disk is full" in message
    assert isinstance(caught.value.__cause__, OSError)
    assert_only_version_one(user_dir)


def test_failed_first_save_leaves_nothing(user_dir, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "save_file", failing_save_file)
    with pytest.raises(CheckpointError, match=r"Saving new failed \(the disk is full\); nothing was written as new"):
        save_checkpoint(user_dir / "new", tiny_gpt())
    assert list(user_dir.iterdir()) == []
    assert [e for e in list_checkpoints() if e.source == "user"] == []


def test_no_permission_is_explained(previous, user_dir, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    with monkeypatch.context() as patch, pytest.raises(
            CheckpointError, match="no permission to write in .*previous version of m is intact"):
        patch.setattr(checkpoint_module.tempfile, "mkdtemp", refuse)
        save_checkpoint(previous, tiny_gpt(), meta={"version": 2}, overwrite=True)
    assert_only_version_one(user_dir)


def test_when_the_old_folder_cannot_be_put_back_the_message_says_where_it_is(previous, user_dir, monkeypatch):
    real, calls = os.replace, []

    def replace(src, dst):  # 1: old folder aside (works), 2: new folder in (fails), 3: old folder back (fails)
        calls.append(1)
        if len(calls) >= 2:
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    with monkeypatch.context() as patch, pytest.raises(CheckpointError, match="could not be put back") as caught:
        patch.setattr(checkpoint_module.os, "replace", replace)
        save_checkpoint(previous, tiny_gpt(), meta={"version": 2}, overwrite=True)
    backup = next(p for p in user_dir.iterdir() if p.name.startswith(".m.old-"))
    assert str(backup) in str(caught.value) and load_checkpoint(backup).meta["version"] == 1
    assert [e.name for e in list_checkpoints() if e.source == "user"] == []  # nothing half-written is listed


def test_interrupt_is_not_disguised_but_still_cleans_up(previous, user_dir, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(checkpoint_module, "save_file", interrupted)
        save_checkpoint(previous, tiny_gpt(), meta={"version": 2}, overwrite=True)
    assert_only_version_one(user_dir)


def test_train_page_save_reports_the_failure_as_a_checkpoint_error(user_dir, monkeypatch):
    """TrainingJob.save (what the Train page calls; it shows CheckpointError with st.error) on a full disk."""
    settings = TrainSettings(n=3, vocab=4, d_model=16, n_heads=2, n_kv_heads=1, n_layers=1, steps=10, batch_size=8)
    job = TrainingJob(settings, "me")
    JobQueue(max_runs_override=1).submit(job)
    assert job.wait(60) and job.has_model
    job.save("m")
    first = load_checkpoint(user_dir / "m").meta["steps"]
    with monkeypatch.context() as patch, pytest.raises(
            CheckpointError, match=r"Saving m failed \(the disk is full\); the previous version of m is intact"):
        patch.setattr(checkpoint_module, "save_file", failing_save_file)
        job.save("m", overwrite=True)
    assert load_checkpoint(user_dir / "m").meta["steps"] == first
    assert sorted(p.name for p in user_dir.iterdir()) == ["m"]


def test_a_failed_replace_through_the_store_keeps_the_owners_model(user_dir, monkeypatch):
    """save_user_model (uploads and the Train page) on a full disk: version 1 intact, the store still usable."""
    save_user_model("m", tiny_gpt(), None, {"version": 1}, "tag")
    with monkeypatch.context() as patch, pytest.raises(
            CheckpointError, match=r"Saving m failed \(the disk is full\); the previous version of m is intact"):
        patch.setattr(checkpoint_module, "save_file", failing_save_file)
        save_user_model("m", tiny_gpt(), None, {"version": 2}, "tag", overwrite=True)
    assert_only_version_one(user_dir)
    save_user_model("m", tiny_gpt(), None, {"version": 2}, "tag", overwrite=True)  # the lock was let go
    assert load_checkpoint(user_dir / "m").meta["version"] == 2
