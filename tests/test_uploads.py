"""Checkpoint uploads: app_lib.uploads on good and hostile files, then the Your models page through AppTest.

Every test writes into a temporary TP_USER_MODELS; nothing lands in the repository.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import tiny_gpt

from app_lib.checkpoints import list_checkpoints
from app_lib.uploads import (
    MAX_UNPACKED_BYTES,
    MAX_UPLOAD_BYTES,
    UploadedBytes,
    UploadError,
    default_name,
    install_upload,
    zip_checkpoint,
)
from app_lib.user_models import NAME_MAX, NAME_PATTERN, NameTakenError, free_name, sanitise_name
from model import CheckpointError, GPT, GPTConfig, load_checkpoint, save_checkpoint
from model.tasks.reversal import ReversalTask
from model.tokenizers import SymbolTokenizer

pytestmark = pytest.mark.usefixtures("no_pages_folder_mode")  # see tests/conftest.py

APP = str(Path(__file__).resolve().parents[1] / "app.py")
SAFE_NAME = re.compile(rf"[a-z0-9][a-z0-9_-]{{0,{NAME_MAX - 1}}}")


@pytest.fixture
def user_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "user_models"
    monkeypatch.setenv("TP_USER_MODELS", str(folder))
    return folder


@pytest.fixture
def source(tmp_path) -> Path:
    """A good checkpoint (reversal GPT with its tokenizer and task) outside the user folder."""
    task = ReversalTask(n=3, vocab=4)
    tokenizer = SymbolTokenizer.of_size(4)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, max_len=8, d_model=16, n_heads=2, n_layers=1))
    return save_checkpoint(tmp_path / "source" / "rev", model, tokenizer, {"task": task.describe(), "steps": 0})


def files_of(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in ("config.json", "model.safetensors")}


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def two_files(config: bytes, weights: bytes) -> list[UploadedBytes]:
    return [UploadedBytes("config.json", config), UploadedBytes("model.safetensors", weights)]


def assert_refused(files, user_dir, message):
    with pytest.raises(CheckpointError, match=message):
        install_upload(files, user_dir, "m")
    assert not user_dir.exists() or list(user_dir.iterdir()) == []  # nothing kept, not even a hidden staging folder


def same_model(a: Path, b: Path) -> bool:
    ids = torch.tensor([[1, 2, 3, 0]])
    return torch.equal(load_checkpoint(a).model(ids), load_checkpoint(b).model(ids))


# ------------------------------------------------------------------ good uploads


def test_flat_zip_is_saved_under_its_file_name_and_listed(source, user_dir):
    installed = install_upload([UploadedBytes("My Reversal.zip", make_zip(files_of(source)))], user_dir)
    assert installed.name == "my-reversal" and installed.path == user_dir / "my-reversal"
    assert same_model(source, installed.path)
    loaded = load_checkpoint(installed.path)
    assert loaded.meta["task"] == {"name": "reversal", "n": 3, "vocab": 4}
    assert loaded.meta["uploaded_from"] == "My Reversal.zip" and loaded.tokenizer.vocab_size == 4
    entries = {e.name: e for e in list_checkpoints()}
    assert entries["user/my-reversal"].source == "user" and entries["user/my-reversal"].error is None
    assert sorted(p.name for p in user_dir.iterdir()) == ["my-reversal"]


def test_zip_with_one_top_level_folder_and_finder_litter(source, user_dir):
    members = {f"rev/{name}": data for name, data in files_of(source).items()}
    members |= {"__MACOSX/rev/._config.json": b"\x00\x05", "rev/.DS_Store": b"\x00", "rev/README.txt": b"hi"}
    installed = install_upload([UploadedBytes("rev.zip", make_zip(members))], user_dir, "Typed Name")
    assert installed.name == "typed-name" and installed.ignored == ("rev/README.txt",)
    assert same_model(source, installed.path)


def test_the_two_files_uploaded_together(source, user_dir):
    data = files_of(source)
    installed = install_upload(two_files(data["config.json"], data["model.safetensors"])[::-1], user_dir)
    assert installed.name == "uploaded-model" and same_model(source, installed.path)


def test_downloaded_zip_uploads_again(source, user_dir):
    archive = zip_checkpoint(source)
    assert sorted(zipfile.ZipFile(io.BytesIO(archive)).namelist()) == ["rev/config.json", "rev/model.safetensors"]
    assert same_model(source, install_upload([UploadedBytes("rev.zip", archive)], user_dir).path)


def test_half_precision_upload_keeps_its_dtype(user_dir, tmp_path):
    half = save_checkpoint(tmp_path / "half", tiny_gpt(), dtype=torch.float16)
    installed = install_upload([UploadedBytes("half.zip", zip_checkpoint(half))], user_dir)
    assert json.loads((installed.path / "config.json").read_text())["weights"]["dtype"] == "float16"
    assert (installed.path / "model.safetensors").stat().st_size == (half / "model.safetensors").stat().st_size


# ------------------------------------------------------------------ sizes and zip bombs


class HugeUpload:
    """Says it is larger than the cap; reading it fails the test (the size must be checked first)."""

    name, size = "big.zip", MAX_UPLOAD_BYTES + 1

    def getvalue(self) -> bytes:
        raise AssertionError("an oversized upload was read")


def test_oversized_upload_is_refused_before_reading(user_dir):
    assert_refused([HugeUpload()], user_dir, "the limit is 64 MB")


def test_two_files_count_together_against_the_cap(source, user_dir):
    config = UploadedBytes("config.json", files_of(source)["config.json"])
    assert_refused([config, HugeUpload()], user_dir, "the limit is 64 MB")


def test_zip_bomb_is_refused_without_unpacking(user_dir, monkeypatch):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", b"{}")
        with archive.open("model.safetensors", "w", force_zip64=True) as member:
            zeros = bytes(2**20)
            for _ in range(MAX_UNPACKED_BYTES // 2**20 + 1):
                member.write(zeros)
    bomb = buffer.getvalue()
    assert len(bomb) < 2**20  # under a megabyte on the wire, over the cap unpacked

    def no_unpacking(*args, **kwargs):
        raise AssertionError("a zip bomb member was opened")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_unpacking)
    assert_refused([UploadedBytes("bomb.zip", bomb)], user_dir, r"would unpack to 129 MB; the limit is 128 MB")


def test_zip_with_too_many_members(source, user_dir):
    members = files_of(source) | {f"junk/{i}.txt": b"x" for i in range(20)}
    assert_refused([UploadedBytes("many.zip", make_zip(members))], user_dir, "22 entries")


# ------------------------------------------------------------------ hostile names inside zips


@pytest.mark.parametrize("member", ["../config.json", "rev/../../config.json", "/etc/config.json",
                                    "C:/temp/config.json", "..\\..\\config.json", "\\config.json"])
def test_path_traversal_and_absolute_members_are_refused(source, user_dir, tmp_path, member):
    data = files_of(source)
    archive = make_zip({member: data["config.json"], "model.safetensors": data["model.safetensors"]})
    assert_refused([UploadedBytes("evil.zip", archive)], user_dir, "absolute path|outside the archive")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source"]  # nothing written beside the user folder


# ------------------------------------------------------------------ foreign and damaged files


class _Exploit:
    """Unpickling this creates a file: proof that something unpickled it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_renamed_to_safetensors_is_never_unpickled(source, user_dir, tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_Exploit(str(marker)))
    assert_refused(two_files(files_of(source)["config.json"], evil), user_dir, "starts like a PyTorch pickle")
    assert_refused([UploadedBytes("model.pt", evil)], user_dir, "model.pt is a PyTorch pickle")
    assert not marker.exists()


def test_torch_save_file_is_refused_by_content_or_name(source, user_dir, tmp_path):
    torch.save(tiny_gpt().state_dict(), tmp_path / "weights.pt")
    saved = (tmp_path / "weights.pt").read_bytes()
    assert_refused(two_files(files_of(source)["config.json"], saved), user_dir, "starts like a PyTorch pickle")
    assert_refused([UploadedBytes("weights.zip", saved)], user_dir, "PyTorch pickle")
    assert_refused([UploadedBytes("pytorch_model.bin", saved)], user_dir, "PyTorch pickle")
    assert_refused([UploadedBytes("bundle.zip", make_zip({"pytorch_model.bin": saved}))], user_dir, "PyTorch pickle")


def test_random_bytes(source, user_dir):
    noise = torch.randint(0, 256, (5000,), dtype=torch.uint8).numpy().tobytes()
    assert_refused([UploadedBytes("noise.zip", noise)], user_dir, "not a zip archive")
    assert_refused(two_files(files_of(source)["config.json"], noise), user_dir, "truncated or not a safetensors")
    assert_refused(two_files(noise, files_of(source)["model.safetensors"]), user_dir, "not valid JSON")


def test_truncated_safetensors(source, user_dir):
    data = files_of(source)
    weights = data["model.safetensors"]
    assert_refused(two_files(data["config.json"], weights[: len(weights) // 2]), user_dir,
                   "truncated or not a safetensors")


def test_hugging_face_config(source, user_dir):
    config = json.dumps({"model_type": "gpt2", "n_embd": 768, "architectures": ["GPT2LMHeadModel"]}).encode()
    assert_refused(two_files(config, files_of(source)["model.safetensors"]), user_dir, "Hugging Face config")


def test_json_that_is_not_our_format(source, user_dir):
    assert_refused(two_files(b'{"hello": 1}', files_of(source)["model.safetensors"]), user_dir,
                   "not a Transformer Playground checkpoint")


def edited_config(source: Path, **changes) -> bytes:
    document = json.loads(files_of(source)["config.json"])
    document["config"].update(changes)
    return json.dumps(document).encode()


def test_wrong_shapes(source, user_dir):
    weights = files_of(source)["model.safetensors"]
    assert_refused(two_files(edited_config(source, d_model=32), weights), user_dir, "shapes do not match")
    assert_refused(two_files(edited_config(source, n_layers=2), weights), user_dir, "missing")


def test_config_for_a_giant_model_is_refused_before_it_is_built(source, user_dir, monkeypatch):
    real_init = GPT.__init__

    def only_on_meta(self, config):
        assert config.d_model < 4096 or torch.empty(0).device.type == "meta", "a giant model was allocated"
        real_init(self, config)

    monkeypatch.setattr(GPT, "__init__", only_on_meta)
    giant = edited_config(source, d_model=8192, n_heads=8, n_kv_heads=8, n_layers=8, d_ff=32768)
    assert_refused(two_files(giant, files_of(source)["model.safetensors"]), user_dir, "more than the weights file")
    too_deep = edited_config(source, n_layers=1000)
    assert_refused(two_files(too_deep, files_of(source)["model.safetensors"]), user_dir, "limited to 48")


def test_tokenizer_larger_than_the_vocabulary(source, user_dir):
    document = json.loads(files_of(source)["config.json"])
    document["tokenizer"] = SymbolTokenizer.of_size(40).to_dict()
    config = json.dumps(document).encode()
    assert_refused(two_files(config, files_of(source)["model.safetensors"]), user_dir, "do not belong together")


def test_unknown_task(source, user_dir):
    document = json.loads(files_of(source)["config.json"])
    document["meta"]["task"] = {"name": "chess"}
    assert_refused(two_files(json.dumps(document).encode(), files_of(source)["model.safetensors"]), user_dir,
                   "not one this app knows")


@pytest.mark.parametrize("files, message", [
    ([], "nothing was uploaded"),
    ([UploadedBytes("config.json", b"{}")], "one of each"),
    ([UploadedBytes("a.zip", b""), UploadedBytes("config.json", b"{}")], "one .zip on its own"),
    ([UploadedBytes("notes.txt", b"hello")], "notes.txt"),
])
def test_wrong_sets_of_files(user_dir, files, message):
    assert_refused(files, user_dir, message)


def test_zip_without_a_checkpoint(user_dir):
    assert_refused([UploadedBytes("photos.zip", make_zip({"cat.jpg": b"\xff\xd8"}))], user_dir,
                   "has no config.json .*cat.jpg")


def test_files_in_different_folders(source, user_dir):
    data = files_of(source)
    archive = make_zip({"a/config.json": data["config.json"], "b/model.safetensors": data["model.safetensors"]})
    assert_refused([UploadedBytes("split.zip", archive)], user_dir, "side by side")


# ------------------------------------------------------------------ names


@pytest.mark.parametrize("raw, expected", [
    ("../../x", "x"),
    ("CON", "con-model"),
    ("lpt1", "lpt1-model"),
    ("Modèle Ünïcode", "modele-unicode"),
    ("模型", "uploaded-model"),
    ("", "uploaded-model"),
    ("   ", "uploaded-model"),
    (None, "uploaded-model"),
    (".hidden", "hidden"),
    ("...", "uploaded-model"),
    ("My Model.v2", "my-model-v2"),
    ("a/b\\c", "a-b-c"),
    ("_-_x_-_", "x"),
    ("x" * 100, "x" * NAME_MAX),
])
def test_names_are_sanitised(raw, expected):
    name = sanitise_name(raw)
    assert name == expected and SAFE_NAME.fullmatch(name) and NAME_PATTERN.fullmatch(name)  # the store saves it


def test_default_name_comes_from_the_zip():
    assert default_name([UploadedBytes("C:\\fakepath\\Dates Model.zip", b"")]) == "dates-model"
    assert default_name([UploadedBytes("config.json", b""), UploadedBytes("model.safetensors", b"")]) == \
        "uploaded-model"


def test_existing_name_is_not_overwritten_without_asking(source, user_dir, tmp_path):
    first = install_upload([UploadedBytes("rev.zip", zip_checkpoint(source))], user_dir, owner="tag-a")
    stamp = (first.path / "model.safetensors").stat().st_mtime_ns
    other = save_checkpoint(tmp_path / "other" / "rev", GPT(GPTConfig(vocab_size=4, max_len=8, d_model=16, n_heads=2,
                                                                       n_layers=1)), SymbolTokenizer.of_size(4))
    with pytest.raises(NameTakenError) as taken:
        install_upload([UploadedBytes("rev.zip", zip_checkpoint(other))], user_dir)
    assert taken.value.name == "rev" and taken.value.suggestion == "rev-2"
    assert (first.path / "model.safetensors").stat().st_mtime_ns == stamp and same_model(source, first.path)
    second = install_upload([UploadedBytes("rev.zip", zip_checkpoint(other))], user_dir, taken.value.suggestion)
    assert second.name == "rev-2" and same_model(other, second.path)
    replaced = install_upload([UploadedBytes("rev.zip", zip_checkpoint(other))], user_dir, overwrite=True,
                              owner="tag-a")  # the same session (owner tag) that saved it
    assert replaced.name == "rev" and same_model(other, replaced.path)
    assert sorted(p.name for p in user_dir.iterdir()) == ["rev", "rev-2"]


def test_free_name_respects_the_length_cap(user_dir):
    user_dir.mkdir()
    long = "x" * NAME_MAX
    (user_dir / long).mkdir()
    suggestion = free_name(long, user_dir)
    assert suggestion == "x" * (NAME_MAX - 2) + "-2" and SAFE_NAME.fullmatch(suggestion)


def test_an_upload_error_is_a_checkpoint_error():
    assert issubclass(UploadError, CheckpointError) and issubclass(NameTakenError, CheckpointError)


# ------------------------------------------------------------------ the page, through AppTest


def my_models_page(user_dir: Path):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60).run()
    return at.switch_page("pages/my_models.py").run()


def upload(at, *files: tuple[str, bytes], name: str = "", replace: bool = False):
    at.file_uploader(key="up_files").set_value([(n, data, "application/octet-stream") for n, data in files])
    at.text_input(key="up_name").set_value(name)
    at.checkbox(key="up_replace").set_value(replace)
    return at.button[[b.label for b in at.button].index("Upload")].click().run()


def test_page_lists_working_and_broken_models(source, user_dir):
    install_upload([UploadedBytes("rev.zip", zip_checkpoint(source))], user_dir)
    (user_dir / "broken").mkdir()
    (user_dir / "broken" / "config.json").write_text("{not json", encoding="utf-8")
    at = my_models_page(user_dir)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Your models"
    assert any("broken" in e.value and "not valid JSON" in e.value for e in at.main.error)  # load's own words
    downloads = at.get("download_button")
    assert len(downloads) == 1 and downloads[0].proto.label == "Download .zip"
    assert len(at.file_uploader) == 1


def test_page_with_no_models_says_so(user_dir):
    at = my_models_page(user_dir)
    assert not at.exception and any("No saved models yet" in i.value for i in at.info)
    intro = at.markdown[0].value  # the file names are filled in, not left as {PLACEHOLDERS}
    assert "`config.json`" in intro and "`model.safetensors`" in intro and "{" not in intro


def test_page_upload_then_name_taken_then_refused(source, user_dir, tmp_path):
    at = my_models_page(user_dir)
    upload(at, ("rev.zip", zip_checkpoint(source)), name="Class Demo")
    assert not at.exception, [e.value for e in at.exception]
    assert any("user/class-demo" in s.value and "became" in s.value for s in at.success)
    assert "user/class-demo" in at.selectbox(key="checkpoint").options  # the sidebar lists it at once
    at.button(key="up_open").click().run()
    assert at.selectbox(key="checkpoint").value == "user/class-demo" and not at.exception

    upload(at, ("rev.zip", zip_checkpoint(source)), name="class-demo")
    assert any("already have a model called `class-demo`" in w.value for w in at.warning)
    assert at.text_input(key="up_name").value == "class-demo-2"  # a free name, offered
    assert sorted(p.name for p in user_dir.iterdir()) == ["class-demo"]

    upload(at, ("config.json", files_of(source)["config.json"]), ("model.safetensors", pickle.dumps({"a": 1})))
    assert any(e.value.startswith("Not uploaded:") and "pickle" in e.value for e in at.main.error)
    assert not at.exception and sorted(p.name for p in user_dir.iterdir()) == ["class-demo"]


def test_page_replaces_only_when_asked(source, user_dir, tmp_path):
    other = save_checkpoint(tmp_path / "other" / "rev", GPT(GPTConfig(vocab_size=4, max_len=8, d_model=16, n_heads=2,
                                                                       n_layers=1)), SymbolTokenizer.of_size(4))
    at = my_models_page(user_dir)
    upload(at, ("rev.zip", zip_checkpoint(source)), name="rev")  # this session's model: it may replace it
    assert same_model(source, user_dir / "rev")
    upload(at, ("rev.zip", zip_checkpoint(other)), name="rev", replace=True)
    assert not at.exception and any("user/rev" in s.value for s in at.success)
    assert same_model(other, user_dir / "rev") and at.checkbox(key="up_replace").value is False
