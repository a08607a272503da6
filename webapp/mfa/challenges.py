"""What a password login of a user with TOTP on answers instead of tokens: a short-lived mfa_token.

The token is 256 random bits; only its SHA-256 is stored, as the id of an `MfaChallenge` row that
lives MFA_TOKEN_SECONDS and is spent by the one verification that signs in. The login service
imports this module, so it imports nothing of the auth services.
"""
from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from webapp.db import utcnow
from webapp.errors import Unauthenticated
from webapp.mfa.codes import token_digest
from webapp.mfa.models import MfaChallenge, TotpCredential
from webapp.users.models import User

SPENT = "The mfa_token is invalid, expired or already used; sign in again."


def account(session: Session, email: str) -> tuple[User | None, bool]:
    """The user of `email` and whether TOTP is on for them, in one query: login's only one before argon2."""
    row = session.execute(
        select(User, TotpCredential.enabled_at)
        .outerjoin(TotpCredential, TotpCredential.user_id == User.id)
        .where(User.email == email)
    ).first()
    return (row[0], row[1] is not None) if row else (None, False)


def start(session: Session, user_id: int) -> dict:
    """Open a challenge for a user whose password was right; commits. The user's dead ones go."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.execute(delete(MfaChallenge).where(
        MfaChallenge.user_id == user_id, or_(MfaChallenge.expires_at <= now, MfaChallenge.used_at.is_not(None))))
    lifetime = timedelta(seconds=current_app.config["MFA_TOKEN_SECONDS"])
    session.add(MfaChallenge(id=token_digest(token), user_id=user_id, created_at=now, expires_at=now + lifetime))
    session.commit()
    return {"mfa_required": True, "mfa_token": token}


def live(session: Session, token) -> MfaChallenge:
    """The open challenge of an mfa_token, or Unauthenticated."""
    row = session.get(MfaChallenge, token_digest(token)) if isinstance(token, str) and token else None
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        raise Unauthenticated(SPENT)
    return row


def spend(session: Session, challenge_id: str) -> None:
    """Mark the challenge used, once: of two requests racing with one token, one signs in."""
    now = utcnow()
    spent = session.execute(
        update(MfaChallenge)
        .where(MfaChallenge.id == challenge_id, MfaChallenge.used_at.is_(None), MfaChallenge.expires_at > now)
        .values(used_at=now)
    ).rowcount
    if spent != 1:
        session.rollback()
        raise Unauthenticated(SPENT)


def forget(session: Session, user_id: int) -> None:
    """Drop the user's challenges (TOTP turned off); the caller commits."""
    session.execute(delete(MfaChallenge).where(MfaChallenge.user_id == user_id))
