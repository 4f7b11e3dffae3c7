"""Your models: the checkpoints in your folder (broken ones with the reason), upload one, download one."""

import streamlit as st

from app_lib.checkpoints import CheckpointEntry, list_checkpoints
from app_lib.sidebar import CHECKPOINT_KEY, select_checkpoint
from app_lib.state import ensure_entrypoint, session_owner
from app_lib.ui import intro
from app_lib.uploads import MAX_UPLOAD_MB, install_upload, zip_checkpoint
from app_lib.user_models import (
    NAME_MAX,
    USER_PREFIX,
    NameTakenError,
    NotYoursError,
    delete_user_model,
    folder_of,
    is_owner,
    user_entry_name,
    user_models_dir,
)
from explain.inputs import code_span
from model import CheckpointError
from model.checkpoint import CONFIG_FILE, WEIGHTS_FILE

ensure_entrypoint()  # this page reads no selection, but must still run inside app.py (see ensure_entrypoint)

FILES_KEY, NAME_KEY, REPLACE_KEY, RESULT_KEY = "up_files", "up_name", "up_replace", "_tp_upload_result"
DELETE_RESULT_KEY = "_tp_delete_result"

intro(
    "Your models",
    "Models saved on the Train page, or uploaded here, live in the class's folder and appear in the sidebar's "
    f"checkpoint list as `{USER_PREFIX}NAME`. Everyone can open and download them; only the browser session that saved "
    "a model can replace or delete it (after a reload you are a new session: save under a new name). "
    f"Upload a checkpoint saved by this app: one `.zip` holding `{CONFIG_FILE}` "
    f"and `{WEIGHTS_FILE}`, or those two files. Every upload is checked against the model code before it is kept; "
    "PyTorch pickles (`.pt`, `.bin`) are refused, because opening one can run any code hidden in it.",
)


def upload() -> None:
    """The form's callback: it runs before the script, so the sidebar already lists a model saved here."""
    files, typed = st.session_state.get(FILES_KEY) or [], st.session_state.get(NAME_KEY, "")
    try:
        installed = install_upload(files, user_models_dir(), typed, overwrite=st.session_state.get(REPLACE_KEY, False),
                                   owner=session_owner())
    except NotYoursError as not_yours:
        st.session_state[NAME_KEY] = not_yours.suggestion
        st.session_state[REPLACE_KEY] = False
        st.session_state[RESULT_KEY] = ("not_yours", not_yours.name, not_yours.suggestion)
    except NameTakenError as taken:
        st.session_state[NAME_KEY] = taken.suggestion  # offered in the name field: press Upload again to use it
        st.session_state[RESULT_KEY] = ("taken", taken.name, taken.suggestion)
    except CheckpointError as error:
        st.session_state[RESULT_KEY] = ("error", str(error))
    else:
        st.session_state[REPLACE_KEY] = False
        st.session_state[RESULT_KEY] = ("saved", installed.name, typed.strip(), installed.ignored)


def show_delete_result(result: tuple) -> None:
    """What became of the last delete: done, or refused and why."""
    kind, detail = result
    if kind == "deleted":
        st.success(f"Deleted {code_span(user_entry_name(detail))}.")
    else:
        st.error(f"Not deleted: {detail}")


def show_upload_result(result: tuple) -> None:
    """What became of the last upload: saved (under which name), name taken, or refused and why."""
    kind, *details = result
    if kind == "error":
        st.error(f"Not uploaded: {details[0]}")
    elif kind == "not_yours":
        name, suggestion = details
        st.error(f"Not uploaded: {code_span(name)} was saved by someone else (another browser session), and only "
                 f"its owner can replace it. The name field now offers {code_span(suggestion)}: press **Upload** "
                 "to use it, or type another name.")
    elif kind == "taken":
        name, suggestion = details
        st.warning(f"You already have a model called {code_span(name)}. The name field now offers "
                   f"{code_span(suggestion)}: press **Upload** to use it, or type another name, or tick "
                   f"*Replace* to overwrite {code_span(name)}.")
    else:
        name, typed, ignored = details
        note = (f" (names are lowercase letters, digits, '-' and '_', so {code_span(typed)} became "
                f"{code_span(name)})" if typed and typed != name else "")
        st.success(f"Saved as {code_span(user_entry_name(name))}{note}. It is in the sidebar's checkpoint list.")
        if ignored:
            st.caption("Ignored in the zip: " + ", ".join(code_span(m) for m in ignored))
        st.button("Open it now", on_click=select_checkpoint, args=(user_entry_name(name),), key="up_open")


def delete(entry: CheckpointEntry) -> None:
    """The confirm button's callback: delete one of this session's models (runs before the sidebar is drawn)."""
    name = folder_of(entry.name)
    try:
        delete_user_model(name, session_owner())
    except (NotYoursError, OSError) as error:
        st.session_state[DELETE_RESULT_KEY] = ("delete_failed", str(error))
        return
    if st.session_state.get(CHECKPOINT_KEY) == entry.name:  # the sidebar must not keep a deleted model
        del st.session_state[CHECKPOINT_KEY]
    st.session_state[DELETE_RESULT_KEY] = ("deleted", name)


def model_row(entry: CheckpointEntry, owner: str) -> None:
    """One saved model: its name, whose it is, why it is broken if it is; download it, or delete it if yours."""
    name = folder_of(entry.name)
    mine = is_owner(entry.path, owner)
    left, middle, right = st.columns([2, 4, 2], vertical_alignment="center")
    left.markdown(f"**{code_span(name)}**")
    if entry.error:
        middle.error(f"Cannot be opened: {entry.error}", icon=":material/error:")
        return
    middle.caption(f"in the sidebar as {code_span(entry.name)} · "
                   + ("**yours** (saved in this browser session)" if mine else "saved by someone else"))
    right.download_button("Download .zip", data=lambda path=entry.path: zip_checkpoint(path),
                          file_name=f"{name}.zip", mime="application/zip", key=f"download::{name}",
                          on_click="ignore", icon=":material/download:")
    if mine:
        with right.popover("Delete", icon=":material/delete:"):
            st.markdown(f"Delete {code_span(entry.name)} for good? Download it first to keep a copy.")
            st.button("Yes, delete it", key=f"delete::{name}", on_click=delete, args=(entry,), type="primary")


st.subheader("Saved models")
if DELETE_RESULT_KEY in st.session_state:
    show_delete_result(st.session_state.pop(DELETE_RESULT_KEY))
saved = [e for e in list_checkpoints() if e.source == "user"]
if saved:
    owner = session_owner()
    for entry in saved:
        model_row(entry, owner)
else:
    st.info("No saved models yet: train one on the Train page, or upload one below.")
st.caption(f"Folder: {code_span(str(user_models_dir()))}")

st.subheader("Upload a checkpoint")
with st.form("upload_form"):
    st.file_uploader(f"A .zip, or {CONFIG_FILE} + {WEIGHTS_FILE} (at most {MAX_UPLOAD_MB} MB)",
                     accept_multiple_files=True, key=FILES_KEY)
    st.text_input("Name (optional)", max_chars=2 * NAME_MAX, key=NAME_KEY,
                  help="Lowercase letters, digits, '-' and '_'; anything else is replaced. Empty: the zip's name.")
    st.checkbox("Replace a model of mine with the same name", key=REPLACE_KEY)
    st.form_submit_button("Upload", type="primary", on_click=upload)
if RESULT_KEY in st.session_state:
    show_upload_result(st.session_state.pop(RESULT_KEY))
