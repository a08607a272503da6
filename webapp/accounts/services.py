"""Email verification and password reset: issue single-use tokens, redeem them once.

Tokens are mailed by workers; these services create the token row and ask for its email in the
same transaction (the outbox, webapp/dispatch.py), so a committed token always gets its email.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from webapp import validation
from webapp.accounts.emails import render
from webapp.accounts.models import RESET_PASSWORD, SET_PASSWORD, VERIFY_EMAIL, AccountToken
from webapp.auth.passwords import passwords
from webapp.auth.permissions import Permission, require
from webapp.auth.services import revoke_sessions
from webapp.db import utcnow
from webapp.dispatch import enqueue, enqueue_alone
from webapp.errors import BadToken, Invalid, RateLimited
from webapp.guard import guard
from webapp.users.models import User

log = logging.getLogger("webapp.accounts")

SEND_TOKEN_TASK = "delta.email.send_token_email"
RESET_TASK = "delta.email.password_reset"


def _hours(purpose: str) -> int:
    config = current_app.config
    return config["RESET_TOKEN_HOURS"] if purpose == RESET_PASSWORD else config["EMAIL_TOKEN_HOURS"]


def token_text(row: AccountToken) -> str:
    """Rebuild the token a row stands for: only a holder of the app secret can."""
    secret = current_app.config["SECRET_KEY"].encode()
    mac = hmac.new(secret, f"{row.purpose}:{row.id}:{row.nonce}".encode(), hashlib.sha256).digest()
    return f"{row.id}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, purpose: str, *, request_key: str | None = None) -> AccountToken:
    """Add a token row for `user` (flushed for its id); the caller calls `send_token`, then commits."""
    row = AccountToken(user_id=user.id, purpose=purpose, email=user.email, nonce=secrets.token_hex(16),
                       expires_at=utcnow() + timedelta(hours=_hours(purpose)), request_key=request_key)
    session.add(row)
    session.flush()
    row.token_hash = _hash(token_text(row))
    return row


def send_token(row: AccountToken) -> None:
    """Ask for the token's email in the token's transaction (before its commit): the outbox sends it."""
    enqueue(SEND_TOKEN_TASK, row.id)


def token_email(session: Session, token_id: int) -> dict | None:
    """What the worker sends for a token, or None when it no longer needs sending."""
    row = session.get(AccountToken, token_id)
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or user.email != row.email:
        return None
    subject, text, html = render(row.purpose, name=user.name, token=token_text(row),
                                 base_url=current_app.config["PUBLIC_BASE_URL"], hours=_hours(row.purpose))
    # The ledger key outlives the row: the token's hash is unique forever, an id might not be.
    key = f"{row.purpose}:{row.id}:{row.token_hash}"
    return {"key": key, "to": row.email, "subject": subject, "text": text, "html": html}


def resend_verification(session: Session, user: User) -> None:
    """A fresh verification email, a few per hour at most; a broker that is down only delays it."""
    require(user, Permission.EDIT_USER, user)
    if user.email_verified is not None:
        return
    limit = current_app.config["VERIFY_EMAILS_PER_HOUR"]
    recent = session.scalar(select(func.count()).select_from(AccountToken).where(
        AccountToken.user_id == user.id, AccountToken.purpose == VERIFY_EMAIL,
        AccountToken.created_at > utcnow() - timedelta(hours=1)))
    if recent >= limit:
        raise RateLimited("Too many verification emails; try again later.", retry_after=3600)
    send_token(issue_token(session, user, VERIFY_EMAIL))
    session.commit()


def _redeem(session: Session, token: str, purposes: set[str]) -> AccountToken:
    """Spend a token once: unknown, tampered, expired, spent or wrong-purpose tokens are BadToken."""
    token_id, _, _mac = (token or "").partition(".")
    if not (token_id.isascii() and token_id.isdigit()) or len(token) > 200:  # "³".isdigit() too
        raise BadToken()
    row = session.get(AccountToken, int(token_id)) if int(token_id) < 2**63 else None
    if (row is None or row.purpose not in purposes or row.expires_at <= utcnow()
            or not hmac.compare_digest(row.token_hash, _hash(token))):
        raise BadToken()
    spent = session.execute(update(AccountToken).where(AccountToken.id == row.id, AccountToken.used_at.is_(None))
                            .values(used_at=utcnow())).rowcount
    if spent != 1:
        session.rollback()
        raise BadToken()
    return row


def verify_email(session: Session, token: str) -> User:
    row = _redeem(session, token, {VERIFY_EMAIL})
    user = session.get(User, row.user_id)
    if user is None or user.email != row.email:
        session.rollback()
        raise BadToken("This token was issued for another email address.")
    if user.email_verified is None:
        user.email_verified = utcnow()
    session.commit()
    return user


def request_password_reset(email: str, *, ip: str | None = None) -> None:
    """Queue the lookup itself, so the answer takes the same time whether the account exists."""
    if ip is not None:
        guard().hit("RATELIMIT_PASSWORD_RESET_IP", ip)
    try:
        email = validation.email(email)
    except Invalid as exc:
        raise Invalid("Validation failed.", errors={"email": [exc.message]}) from None
    enqueue_alone(RESET_TASK, email, uuid.uuid4().hex)  # kept in the outbox while the broker is down


def prepare_password_reset(session: Session, email: str, request_key: str) -> AccountToken | None:
    """Worker side: the request's token (made once per request key), or None for no such account."""
    row = session.scalar(select(AccountToken).where(AccountToken.request_key == request_key))
    if row is not None:
        return row
    user = session.scalar(select(User).where(User.email == email))
    if user is None or not user.is_active:
        return None
    row = issue_token(session, user, RESET_PASSWORD, request_key=request_key)
    session.commit()
    return row


def reset_password(session: Session, token: str, new_password: str) -> User:
    """Set the password, spend the token and sign out every session of the user."""
    validation.collect({"new_password": lambda: validation.password(new_password)})
    row = _redeem(session, token, {RESET_PASSWORD, SET_PASSWORD})
    user = session.get(User, row.user_id)
    if user is None:
        session.rollback()
        raise BadToken()
    user.password_hash = passwords.hash(new_password)
    if user.email == row.email and user.email_verified is None:
        user.email_verified = utcnow()  # the link reached this mailbox
    session.execute(update(AccountToken).where(
        AccountToken.user_id == user.id, AccountToken.purpose.in_((RESET_PASSWORD, SET_PASSWORD)),
        AccountToken.used_at.is_(None)).values(used_at=utcnow()))
    revoke_sessions(session, user.id)
    session.commit()
    return user
