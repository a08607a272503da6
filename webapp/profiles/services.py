"""Profiles and avatars: reads for any signed-in user, writes for the user themself and admins."""
from __future__ import annotations

import secrets

from flask import current_app
from sqlalchemy import update
from sqlalchemy.orm import Session

from webapp import validation
from webapp.auth.permissions import Permission, require
from webapp.dispatch import enqueue
from webapp.errors import Invalid
from webapp.media import images
from webapp.media.storage import get_storage
from webapp.profiles.avatars import all_keys
from webapp.users.models import Profile, User
from webapp.users.services import get_user

BIO_MAX = 2000
EDITABLE = ("first_name", "last_name", "bio")


def profile_of(session: Session, user: User) -> Profile:
    """The user's profile, created on first use for accounts that predate it."""
    if user.profile is None:
        user.profile = Profile()
        session.flush()
    return user.profile


def read_profile(session: Session, viewer: User | None, user_id) -> Profile | None:
    """A user's profile, for signed-in callers only (the same rule as reading the user)."""
    require(viewer, Permission.VIEW_USERS)
    return get_user(session, user_id).profile


def update_profile(session: Session, actor: User, user: User, changes: dict) -> Profile:
    require(actor, Permission.EDIT_USER, user)
    unknown = [key for key in changes if key not in EDITABLE]
    if unknown:
        raise Invalid("Validation failed.", errors={key: ["Unknown field."] for key in unknown})
    clean: dict = {}
    rules = {"first_name": validation.NAME_MAX, "last_name": validation.NAME_MAX, "bio": BIO_MAX}
    validation.collect({
        key: (lambda key=key: clean.__setitem__(key, validation.text(changes[key], max_len=rules[key]).strip()))
        for key in changes
    })
    profile = profile_of(session, user)
    for key, value in clean.items():
        setattr(profile, key, value)
    session.commit()
    return profile


def set_avatar(session: Session, actor: User, user: User, data: bytes) -> Profile:
    """Check and re-encode the upload, store it under a new random name, then queue the thumbnails."""
    require(actor, Permission.EDIT_USER, user)
    config = current_app.config
    encoded, extension = images.reencode_upload(
        data, max_bytes=config["MAX_AVATAR_BYTES"], max_pixels=config["AVATAR_MAX_PIXELS"])
    storage = get_storage()
    key = f"avatars/{user.id}/{secrets.token_hex(16)}.{extension}"
    storage.save(key, encoded)
    profile = profile_of(session, user)
    # Lock the row before reading the old key, until the commit: two uploads at once would
    # otherwise both read the same old key, and the second would leave the first one's files
    # behind. A no-op UPDATE locks on both databases (SQLite ignores FOR UPDATE).
    session.execute(update(Profile).where(Profile.user_id == user.id).values(avatar_key=Profile.avatar_key)
                    .execution_options(synchronize_session=False))
    session.refresh(profile)
    old_keys = all_keys(profile)
    profile.avatar_key, profile.avatar_thumbnails = key, ""
    enqueue("delta.jobs.make_thumbnails", user.id, key)  # heavy queue, handed over after the commit
    try:
        session.commit()
    except Exception:
        session.rollback()
        storage.delete(key)
        raise
    for old in old_keys:
        storage.delete(old)
    session.refresh(profile)  # eagerly run (embedded default), the thumbnails are already there
    return profile
