"""Avatar files: their keys and URLs, and the thumbnail task (tasks/jobs.py, heavy queue)."""
from __future__ import annotations

import logging

from sqlalchemy import select, update

from webapp.extensions import db
from webapp.media import images
from webapp.media.storage import get_storage
from webapp.users.models import Profile

log = logging.getLogger("webapp.avatars")


def thumbnail_key(key: str, size: int) -> str:
    stem, _, extension = key.rpartition(".")
    return f"{stem}_{size}.{extension}"


def all_keys(profile: Profile) -> list[str]:
    """The original and every thumbnail the profile points to (for deletion)."""
    if not profile.avatar_key:
        return []
    return [profile.avatar_key, *(thumbnail_key(profile.avatar_key, s) for s in images.THUMBNAIL_SIZES)]


def avatar_urls(profile: Profile | None) -> tuple[str | None, list[dict]]:
    """(original URL or None, [{size, url}] for the thumbnails made so far)."""
    if profile is None or not profile.avatar_key:
        return None, []
    storage = get_storage()
    made = [int(size) for size in profile.avatar_thumbnails.split(",") if size]
    return storage.url(profile.avatar_key), [
        {"size": size, "url": storage.url(thumbnail_key(profile.avatar_key, size))} for size in made
    ]


def make_thumbnails(user_id: int, key: str) -> None:
    """Task: make the 64 and 256 px thumbnails of avatar `key`. Idempotent; a no-op once superseded.

    The avatar may be replaced at any moment, and `set_avatar` then deletes the files of the old
    one, perhaps before this task has written them. So the thumbnails are recorded only while `key`
    is still the profile's avatar (one conditional UPDATE), and the files of a superseded key are
    deleted here instead: a late or overtaken task leaves nothing behind and raises nothing.
    A corrupt original raises `images.ImageError` before anything is written or recorded.
    """
    session = db.session
    if not _is_current(session, user_id, key):
        _discard(key)
        return
    storage = get_storage()
    try:
        original = storage.read(key)
    except FileNotFoundError:
        if _is_current(session, user_id, key):
            raise  # the current avatar's file is missing: a real fault, not a replacement
        _discard(key)
        return
    made = {size: images.thumbnail(original, size) for size in images.THUMBNAIL_SIZES}
    for size, data in made.items():
        storage.save(thumbnail_key(key, size), data)
    recorded = session.execute(
        update(Profile).where(Profile.user_id == user_id, Profile.avatar_key == key)
        .values(avatar_thumbnails=",".join(str(size) for size in made))
    ).rowcount
    session.commit()
    if not recorded:  # replaced while the thumbnails were being made
        _discard(key)


def _is_current(session, user_id: int, key: str) -> bool:
    current = session.scalar(select(Profile.avatar_key).where(Profile.user_id == user_id))
    session.rollback()  # end the read's transaction: the task may now run for a while
    return current == key


def _discard(key: str) -> None:
    """Delete a superseded avatar's original and thumbnails (keys are random, never reused)."""
    storage = get_storage()
    for old in (key, *(thumbnail_key(key, size) for size in images.THUMBNAIL_SIZES)):
        storage.delete(old)
