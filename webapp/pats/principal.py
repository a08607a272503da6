"""A personal access token to its live principal: the hot path of every request that sends one.

One statement, as for access tokens (webapp/auth/tokens.py `principal_row`): the token's row by
the unique index on its public `lookup` part, joined to its user and profile. The secret is
checked against the stored SHA-256 with `hmac.compare_digest`; a revoked token has no row, so it
stops working on the next request on every host. `last_used_at` is written only when the
loaded value is a minute old, by a conditional UPDATE on the autocommit connection: most
requests write nothing, and hosts racing on the same minute write once.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import string
from datetime import timedelta

from sqlalchemy import bindparam, or_, select, update

from webapp.auth.tokens import PRINCIPAL_COLUMNS, principal_from, principal_row
from webapp.db import utcnow
from webapp.errors import Unauthenticated
from webapp.extensions import db
from webapp.pats.models import PersonalAccessToken
from webapp.users.models import Profile, User

PREFIX = "dlt_pat_"
ALPHABET = string.digits + string.ascii_letters  # base62: no `_` or `-`, so a double-click selects it all
LOOKUP_LENGTH, SECRET_LENGTH = 12, 43  # 71 bits to find the row; 32 random bytes in base62
TOKEN = re.compile(rf"{PREFIX}([0-9A-Za-z]{{{LOOKUP_LENGTH}}})_([0-9A-Za-z]{{{SECRET_LENGTH}}})")
INVALID, EXPIRED = "Invalid token.", "Token has expired."
TOUCH_EVERY = timedelta(seconds=60)

_pats, _users, _profiles = PersonalAccessToken.__table__, User.__table__, Profile.__table__
PAT_PRINCIPAL = (
    select(*PRINCIPAL_COLUMNS, _pats.c.id.label("pat_id"), _pats.c.secret_hash.label("pat_secret_hash"),
           _pats.c.scopes.label("pat_scopes"), _pats.c.expires_at.label("pat_expires_at"),
           _pats.c.last_used_at.label("pat_last_used_at"))
    .select_from(_pats.join(_users, _users.c.id == _pats.c.user_id)
                 .outerjoin(_profiles, _profiles.c.user_id == _users.c.id))
    .where(_pats.c.lookup == bindparam("lookup"))
)
TOUCH = (
    update(_pats)
    .where(_pats.c.id == bindparam("pat_id"),
           or_(_pats.c.last_used_at.is_(None), _pats.c.last_used_at < bindparam("stale_before")))
    .values(last_used_at=bindparam("now"))
)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split(token: str) -> tuple[str, str] | None:
    """(lookup, secret) of a well-formed token, else None."""
    found = TOKEN.fullmatch(token)
    return (found[1], found[2]) if found else None


def authenticate(token: str) -> User:
    """The live user of a personal access token, carrying its scopes; Unauthenticated otherwise.

    Malformed, unknown, revoked and wrong-secret tokens, and those of a deactivated user, get the
    same answer; only the holder of the right secret learns that it has expired.
    """
    parts = split(token)
    if parts is None:
        raise Unauthenticated(INVALID)
    lookup, secret = parts
    row = principal_row(PAT_PRINCIPAL, {"lookup": lookup})
    if row is None or not hmac.compare_digest(row["pat_secret_hash"], hash_secret(secret)) or not row["is_active"]:
        raise Unauthenticated(INVALID)
    now = utcnow()
    if row["pat_expires_at"] <= now:
        raise Unauthenticated(EXPIRED)
    last_used = row["pat_last_used_at"]
    if last_used is None or last_used <= now - TOUCH_EVERY:
        with db.reader() as connection:
            connection.execute(TOUCH, {"pat_id": row["pat_id"], "stale_before": now - TOUCH_EVERY, "now": now})
    user = principal_from(row)
    user.token_scopes = frozenset(row["pat_scopes"].split())  # read by the policy (webapp/auth/permissions.py)
    user.token_expires_at = row["pat_expires_at"]
    user.token_id = row["pat_id"]  # its streams are closed by id when it is revoked (webapp/realtime)
    return user
