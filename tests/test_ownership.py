"""Nobody touches what is not theirs: in the shared user folder only the session that saved a model
may replace or delete it (app_lib.user_models, the store), through uploads, the Train page's save, and the
Your models page. Every test writes into a temporary TP_USER_MODELS.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

from app_lib.checkpoints import list_checkpoints
from app_lib.training_job import JobQueue, TrainingJob, TrainSettings
from app_lib.uploads import UploadedBytes, install_upload, zip_checkpoint
from app_lib.user_models import (
    NameTakenError,
    NotYoursError,
    delete_user_model,
    is_owner,
    list_user_models,
    owner_tag,
    save_user_model,
    stored_owner,
    with_owner,
)
from model import CheckpointError, GPT, GPTConfig, load_checkpoint, save_checkpoint
from model.tasks.reversal import ReversalTask
from model.tokenizers import SymbolTokenizer

pytestmark = pytest.mark.usefixtures("no_pages_folder_mode")  # see tests/conftest.py

APP = str(Path(__file__).resolve().parents[1] / "app.py")
ALICE, BOB = owner_tag("alice-token"), owner_tag("bob-token")


@pytest.fixture
def user_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "user_models"
    monkeypatch.setenv("TP_USER_MODELS", str(folder))
    return folder


def reversal_checkpoint(folder: Path, seed: int, meta: dict | None = None) -> Path:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=4, max_len=8, d_model=16, n_heads=2, n_layers=1))
    return save_checkpoint(folder, model, SymbolTokenizer.of_size(4),
                           {"task": ReversalTask(n=3, vocab=4).describe()} | (meta or {}))


def as_upload(folder: Path) -> list[UploadedBytes]:
    return [UploadedBytes("rev.zip", zip_checkpoint(folder))]


def weights_of(folder: Path) -> bytes:
    return (folder / "model.safetensors").read_bytes()


def test_tags_are_stable_distinct_and_hide_the_token():
    assert owner_tag("alice-token") == ALICE != BOB
    assert "alice-token" not in ALICE and len(ALICE) == 32
    assert with_owner({"owner": BOB, "steps": 3}, ALICE) == {"owner": ALICE, "steps": 3}
    assert with_owner({"owner": BOB, "steps": 3}, None) == {"steps": 3}


def test_an_upload_is_tagged_with_the_uploader_never_with_the_sender(user_dir, tmp_path):
    forged = reversal_checkpoint(tmp_path / "forged", 0, {"owner": BOB})  # a zip claiming to be Bob's
    installed = install_upload(as_upload(forged), user_dir, "rev", owner=ALICE)
    assert stored_owner(installed.path) == ALICE and load_checkpoint(installed.path).meta["owner"] == ALICE
    assert is_owner(installed.path, ALICE) and not is_owner(installed.path, BOB)


def test_only_the_owner_replaces_an_upload(user_dir, tmp_path):
    first = install_upload(as_upload(reversal_checkpoint(tmp_path / "a", 0)), user_dir, "rev", owner=ALICE).path
    before = weights_of(first)
    other = as_upload(reversal_checkpoint(tmp_path / "b", 1))
    with pytest.raises(NotYoursError, match="someone else") as refused:
        install_upload(other, user_dir, "rev", overwrite=True, owner=BOB)
    assert refused.value.suggestion == "rev-2"  # a free name is offered instead
    with pytest.raises(NotYoursError):
        install_upload(other, user_dir, "rev", overwrite=True, owner=None)  # no session: nobody's
    assert weights_of(first) == before and stored_owner(first) == ALICE
    install_upload(other, user_dir, "rev", overwrite=True, owner=ALICE)
    assert weights_of(first) != before and sorted(p.name for p in user_dir.iterdir()) == ["rev"]


def test_an_untagged_model_is_never_replaced_or_deleted(user_dir, tmp_path):
    teachers = reversal_checkpoint(user_dir / "lesson", 0)  # copied in by hand: no owner
    before = weights_of(teachers)
    with pytest.raises(NotYoursError):
        install_upload(as_upload(reversal_checkpoint(tmp_path / "b", 1)), user_dir, "lesson", overwrite=True,
                       owner=ALICE)
    with pytest.raises(NotYoursError):
        delete_user_model("lesson", ALICE)
    assert weights_of(teachers) == before


def test_training_save_never_replaces_another_sessions_model(user_dir):
    settings = TrainSettings(n=3, vocab=4, d_model=16, n_heads=2, n_kv_heads=1, n_layers=1, steps=10, batch_size=8)
    alices, bobs = TrainingJob(settings, "alice-token"), TrainingJob(settings, "bob-token")
    queue = JobQueue(max_runs_override=2)
    queue.submit(alices)
    queue.submit(bobs)
    assert alices.wait(60) and bobs.wait(60)
    path = alices.save("shared-name")
    assert stored_owner(path) == ALICE
    before = weights_of(path)
    with pytest.raises(NotYoursError):
        bobs.save("shared-name", overwrite=True)
    assert weights_of(path) == before
    alices.save("shared-name", overwrite=True)  # her own: allowed (the page asks first)
    assert stored_owner(path) == ALICE


def test_delete_is_the_owners_only_and_leaves_nothing_half_listed(user_dir, tmp_path):
    path = install_upload(as_upload(reversal_checkpoint(tmp_path / "a", 0)), user_dir, "rev", owner=ALICE).path
    with pytest.raises(NotYoursError):
        delete_user_model("rev", BOB)
    assert [e.name for e in list_checkpoints() if e.source == "user"] == ["user/rev"]
    delete_user_model("rev", ALICE)
    assert not path.exists() and list(user_dir.iterdir()) == []  # no hidden leftovers either
    with pytest.raises(FileNotFoundError):
        delete_user_model("rev", ALICE)


def tiny_model(seed: int) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=4, max_len=8, d_model=16, n_heads=2, n_layers=1))


def test_the_store_saves_lists_and_refuses_bad_or_taken_names(user_dir):
    path = save_user_model("rev", tiny_model(0), SymbolTokenizer.of_size(4), {"steps": 1}, ALICE)
    assert path == user_dir / "rev" and stored_owner(path) == ALICE
    assert [(m.name, m.entry_name) for m in list_user_models()] == [("rev", "user/rev")]
    for bad in ("", "../rev", "a/b", ".hidden", "-x", "x" * 49):
        with pytest.raises(CheckpointError, match="a name is"):
            save_user_model(bad, tiny_model(0), None, {}, ALICE)
    before = weights_of(path)
    with pytest.raises(NameTakenError) as taken:
        save_user_model("rev", tiny_model(1), None, {}, ALICE)
    assert (taken.value.name, taken.value.suggestion) == ("rev", "rev-2") and weights_of(path) == before
    with pytest.raises(NotYoursError) as refused:
        save_user_model("rev", tiny_model(1), None, {}, BOB, overwrite=True)
    assert refused.value.suggestion == "rev-2" and weights_of(path) == before
    save_user_model("rev", tiny_model(1), None, {"owner": BOB}, ALICE, overwrite=True)
    assert weights_of(path) != before and stored_owner(path) == ALICE  # meta's owner is always the saver's


def test_two_sessions_saving_one_name_at_once_cannot_both_take_it(user_dir):
    outcomes: list[str] = []

    def save(tag: str, seed: int) -> None:
        try:
            save_user_model("race", tiny_model(seed), None, {}, tag)
            outcomes.append("saved")
        except NameTakenError:
            outcomes.append("taken")

    threads = [threading.Thread(target=save, args=(tag, i)) for i, tag in enumerate((ALICE, BOB) * 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["saved", "taken", "taken", "taken"]
    assert [p.name for p in user_dir.iterdir()] == ["race"]


def test_delete_takes_a_name_never_a_path(user_dir, tmp_path):
    outside = save_user_model("rev", tiny_model(0), None, {}, ALICE, directory=tmp_path / "elsewhere")
    for name in ("../elsewhere/rev", str(outside), ""):
        with pytest.raises(NotYoursError):
            delete_user_model(name, ALICE)
    assert outside.exists()


def test_a_corrupt_config_has_no_owner(user_dir):
    (user_dir / "broken").mkdir(parents=True)
    (user_dir / "broken" / "config.json").write_text("{not json", encoding="utf-8")
    assert stored_owner(user_dir / "broken") is None
    (user_dir / "broken" / "config.json").write_text(json.dumps({"meta": {"owner": 7}}), encoding="utf-8")
    assert stored_owner(user_dir / "broken") is None


# ------------------------------------------------------------------ the page, two sessions


def my_models_page():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60).run()
    return at.switch_page("pages/my_models.py").run()


def upload(at, folder: Path, name: str, replace: bool = False):
    at.file_uploader(key="up_files").set_value([("rev.zip", zip_checkpoint(folder), "application/zip")])
    at.text_input(key="up_name").set_value(name)
    at.checkbox(key="up_replace").set_value(replace)
    return at.button[[b.label for b in at.button].index("Upload")].click().run()


def test_two_sessions_on_the_page(user_dir, tmp_path):
    """Alice uploads; Bob (another AppTest: another session) can download but not replace or delete it."""
    alice, bob = my_models_page(), my_models_page()
    upload(alice, reversal_checkpoint(tmp_path / "a", 0), "demo")
    assert not alice.exception and any("user/demo" in s.value for s in alice.success)
    before = weights_of(user_dir / "demo")

    bob.run()
    assert not bob.exception
    assert any("saved by someone else" in c.value for c in bob.caption)
    assert len(bob.get("download_button")) == 1 and "delete::demo" not in [b.key for b in bob.button]
    upload(bob, reversal_checkpoint(tmp_path / "b", 1), "demo", replace=True)
    assert any(e.value.startswith("Not uploaded:") and "someone else" in e.value for e in bob.main.error)
    assert bob.text_input(key="up_name").value == "demo-2" and bob.checkbox(key="up_replace").value is False
    assert weights_of(user_dir / "demo") == before

    alice.run()
    assert any("**yours**" in c.value for c in alice.caption)
    alice.button(key="delete::demo").click().run()
    assert not alice.exception and any("Deleted `user/demo`" in s.value for s in alice.success)
    assert not (user_dir / "demo").exists()
    assert "user/demo" not in alice.selectbox(key="checkpoint").options
