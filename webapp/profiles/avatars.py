"""Avatar files: their keys and URLs, and the thumbnail task (tasks/jobs.py, heavy queue)."""
from __future__ import annotations

import logging

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

    A corrupt original raises `images.ImageError` before anything is written or recorded.
    """
    session = db.session
    profile = session.get(Profile, user_id)
    if profile is None or profile.avatar_key != key:
        return  # the user or this avatar is gone: nothing to do
    storage = get_storage()
    original = storage.read(key)
    made = {size: images.thumbnail(original, size) for size in images.THUMBNAIL_SIZES}
    for size, data in made.items():
        storage.save(thumbnail_key(key, size), data)
    profile.avatar_thumbnails = ",".join(str(size) for size in made)
    session.commit()
