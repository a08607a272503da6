"""Personal access tokens: make one (shown once), list them, revoke one — the caller's or, for admins, anyone's.

Managing tokens needs MANAGE_AUTH, which a token never has (webapp/auth/permissions.py): only a
signed-in session makes, lists or revokes them. Someone else's tokens are not found (404), as
if they did not exist, unless the caller is an admin.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from webapp import validation
from webapp.auth.permissions import SCOPES, WRITE, Permission, can, require
from webapp.db import MAX_ID, utcnow
from webapp.errors import Conflict, Invalid, NotFound
from webapp.events import publish
from webapp.pats.models import PersonalAccessToken
from webapp.pats.principal import (
    ALPHABET,
    LOOKUP_LENGTH,
    PREFIX,
    SECRET_LENGTH,
    hash_secret,
)
from webapp.users.models import User


@dataclass
class Page:
    items: list
    total: int


def token_view(token: PersonalAccessToken) -> dict:
    """What a client may see of a token: never its secret or hash."""
    return {"id": token.id, "name": token.name, "scopes": token.scope_list, "prefix": f"{PREFIX}{token.lookup}",
            "created_at": token.created_at, "expires_at": token.expires_at, "last_used_at": token.last_used_at}


def create_token(session: Session, actor: User, *, name, scopes,
                 expires_in_days=None) -> tuple[PersonalAccessToken, str]:
    """A new token of the caller's and its plaintext, which is never stored and never shown again."""
    require(actor, Permission.MANAGE_AUTH, actor)
    config = current_app.config
    checked: dict = {}
    validation.collect({
        "name": lambda: checked.__setitem__("name", validation.name(name)),
        "scopes": lambda: checked.__setitem__("scopes", _scopes(scopes)),
        "expires_in_days": lambda: checked.__setitem__(
            "days", _days(config["PAT_DEFAULT_DAYS"] if expires_in_days is None else expires_in_days,
                          config["PAT_MAX_DAYS"])),
    })
    session.execute(select(User.id).where(User.id == actor.id).with_for_update())  # one count at a time per user
    held = session.scalar(select(func.count()).select_from(PersonalAccessToken)
                          .where(PersonalAccessToken.user_id == actor.id))
    if held >= config["PAT_MAX_PER_USER"]:
        session.rollback()
        raise Conflict(f"You hold {held} personal access tokens, the most allowed; revoke one first.")
    lookup = "".join(secrets.choice(ALPHABET) for _ in range(LOOKUP_LENGTH))
    secret = _base62(secrets.token_bytes(32)).rjust(SECRET_LENGTH, "0")
    now = utcnow()
    token = PersonalAccessToken(user_id=actor.id, lookup=lookup, secret_hash=hash_secret(secret),
                                name=checked["name"], scopes=" ".join(checked["scopes"]), created_at=now,
                                expires_at=now + timedelta(days=checked["days"]))
    session.add(token)
    session.commit()
    return token, f"{PREFIX}{lookup}_{secret}"


def list_tokens(session: Session, actor: User, user_id: int, *, offset: int = 0, limit: int = 20) -> Page:
    """A page of a user's tokens, newest first, with the total."""
    owner = _owner(session, actor, user_id)
    where = PersonalAccessToken.user_id == owner.id
    total = session.scalar(select(func.count()).select_from(PersonalAccessToken).where(where))
    items = session.scalars(select(PersonalAccessToken).where(where)
                            .order_by(PersonalAccessToken.id.desc()).offset(offset).limit(limit))
    return Page(items=list(items), total=total)


def revoke_token(session: Session, actor: User, user_id: int, token_id: int) -> None:
    """Delete the token: the next request that sends it is refused, on every host."""
    owner = _owner(session, actor, user_id)
    deleted = 0
    if 0 < token_id <= MAX_ID:
        deleted = session.execute(delete(PersonalAccessToken).where(
            PersonalAccessToken.id == token_id, PersonalAccessToken.user_id == owner.id)).rowcount
    if not deleted:
        session.rollback()
        raise NotFound("Token not found.")
    # Its open streams close too (the realtime process keys a token's streams as "pat:<id>").
    publish("sessions", "session.revoked", {"sid": f"pat:{token_id}", "user_id": owner.id}, session=session)
    session.commit()


def _owner(session: Session, actor: User, user_id: int) -> User:
    """The user whose tokens are asked for: 403 for a token-signed caller, 404 when not theirs to see."""
    require(actor, Permission.MANAGE_AUTH, actor)
    owner = actor if user_id == actor.id else (session.get(User, user_id) if 0 < user_id <= MAX_ID else None)
    if owner is None or not can(actor, Permission.MANAGE_AUTH, owner):
        raise NotFound("User not found.")
    return owner


def _scopes(value) -> list[str]:
    """A non-empty subset of read and write; write implies read."""
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(item, str) for item in value):
        raise Invalid(f"Must be a non-empty list of: {', '.join(SCOPES)}.")
    unknown = sorted(set(value) - set(SCOPES))
    if unknown:
        raise Invalid(f"Unknown scope {unknown[0]!r}; must be among: {', '.join(SCOPES)}.")
    return list(SCOPES) if WRITE in value else [SCOPES[0]]


def _days(value, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise Invalid(f"Must be a whole number of days from 1 to {most}.")
    return value


def _base62(data: bytes) -> str:
    number, digits = int.from_bytes(data, "big"), []
    while number:
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))
