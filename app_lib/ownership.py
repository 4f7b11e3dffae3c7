"""Moved into app_lib.user_models (the user-model store), which is the one to import.

These names stay only until app_lib/state.py and app_lib/training_job.py import from the store;
then this file goes.
"""

from __future__ import annotations

from pathlib import Path

from .user_models import OWNER_KEY, NotYoursError, is_owner, owner_tag, stored_owner, with_owner
from .user_models import STORE_LOCK as USER_FOLDER_LOCK


def check_may_replace(folder: Path, tag: str | None, suggestion: str | None = None) -> None:
    """NotYoursError unless `folder` is free or was saved by `tag`."""
    if Path(folder).exists() and not is_owner(folder, tag):
        raise NotYoursError(Path(folder).name, suggestion)


__all__ = ["OWNER_KEY", "USER_FOLDER_LOCK", "NotYoursError", "check_may_replace", "is_owner", "owner_tag",
           "stored_owner", "with_owner"]
