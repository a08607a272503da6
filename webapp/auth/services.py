"""Sign-in, token rotation, sign-out and password changes: one unit of work each.

A user with two-factor sign-in on gets no tokens from the password alone: `login` answers an
mfa_token (webapp/mfa/challenges.py) and webapp/mfa/services.py `verify` calls `sign_in`.
"""
from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from webapp import validation
from webapp.auth.models import AuthSession
from webapp.auth.passwords import passwords
from webapp.auth.permissions import Permission, require
from webapp.auth.tokens import decode_refresh, issue_pair, new_jti
from webapp.db import utcnow
from webapp.errors import Forbidden, Invalid, NotFound, Unauthenticated
from webapp.events import publish
from webapp.guard import guard
from webapp.mfa import challenges as mfa_challenges
from webapp.users.models import User

LOGIN_FAILED = "Invalid email or password."
SESSIONS_TOPIC, SESSION_REVOKED = "sessions", "session.revoked"


def _announce_revoked(session: Session, sid: str, user_id: int) -> None:
    """Tell the realtime process, with the commit, to close this session's streams at once."""
    publish(SESSIONS_TOPIC, SESSION_REVOKED, {"sid": sid, "user_id": user_id}, session=session)


def _start_session(session: Session, user: User, user_agent: str, ip: str) -> AuthSession:
    now = utcnow()
    auth_session = AuthSession(
        id=secrets.token_hex(16),
        user_id=user.id,
        current_jti=new_jti(),
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(days=current_app.config["REFRESH_TOKEN_DAYS"]),
        user_agent=(user_agent or "")[:255],
        ip=(ip or "")[:45],
    )
    session.add(auth_session)
    return auth_session


def login(session: Session, email: str, password: str, *, user_agent: str = "", ip: str = "") -> dict:
    """Same answer and about the same time for an unknown email and a wrong password."""
    limits = guard()
    limits.hit("RATELIMIT_LOGIN_IP", ip or "unknown")
    try:
        email = validation.email(email)
    except Invalid:
        email = None
    account = email or "invalid"
    limits.hit("RATELIMIT_LOGIN_EMAIL", account)
    limits.check("RATELIMIT_LOGIN_FAILURES", account)  # counted per account: rotating IPs does not help
    user, mfa_on = mfa_challenges.account(session, email) if email else (None, False)
    ok = passwords.verify(user.password_hash if user else None, password or "")
    if not ok or user is None or not user.is_active:
        limits.hit("RATELIMIT_LOGIN_FAILURES", account)
        raise Unauthenticated(LOGIN_FAILED)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(password)
    if mfa_on:
        return mfa_challenges.start(session, user.id)
    return sign_in(session, user, user_agent=user_agent, ip=ip)


def sign_in(session: Session, user: User, *, user_agent: str = "", ip: str = "") -> dict:
    """Start a session for a user who has proven who they are; answers its token pair."""
    auth_session = _start_session(session, user, user_agent, ip)
    session.commit()
    return issue_pair(auth_session)


def refresh(session: Session, token: str, *, user_agent: str = "", ip: str = "") -> dict:
    """Rotate the family's refresh token; a spent one revokes the whole family."""
    claims = decode_refresh(token or "")
    sid, jti = claims["sid"], claims.get("jti")
    now = utcnow()
    next_jti = new_jti()
    rotated = session.execute(
        update(AuthSession)
        .where(AuthSession.id == sid, AuthSession.current_jti == jti,
               AuthSession.revoked_at.is_(None), AuthSession.expires_at > now)
        .values(current_jti=next_jti, last_used_at=now)
    ).rowcount
    if rotated != 1:
        owner = session.execute(
            update(AuthSession)
            .where(AuthSession.id == sid, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now).returning(AuthSession.user_id)
        ).scalar()
        if owner is not None:
            _announce_revoked(session, sid, owner)
        session.commit()
        raise Unauthenticated("Refresh token is no longer valid; please sign in again.")
    auth_session = session.get(AuthSession, sid)
    user = session.get(User, auth_session.user_id)
    if user is None or not user.is_active:
        session.rollback()
        raise Unauthenticated("Refresh token is no longer valid; please sign in again.")
    if user_agent:
        auth_session.user_agent = user_agent[:255]
    if ip:
        auth_session.ip = ip[:45]
    session.commit()
    return issue_pair(auth_session)


def revoke_sessions(session: Session, user_id: int, *, keep: str | None = None) -> int:
    """Revoke every live session of a user (but `keep`); the caller commits."""
    stmt = update(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    if keep:
        stmt = stmt.where(AuthSession.id != keep)
    revoked = session.execute(stmt.values(revoked_at=utcnow()).returning(AuthSession.id)).scalars().all()
    for sid in revoked:
        _announce_revoked(session, sid, user_id)
    return len(revoked)


def logout(session: Session, user: User, sid: str) -> None:
    require(user, Permission.MANAGE_AUTH, user)
    session.execute(
        update(AuthSession)
        .where(AuthSession.id == sid, AuthSession.user_id == user.id)
        .values(revoked_at=utcnow())
    )
    _announce_revoked(session, sid, user.id)
    session.commit()


def change_password(session: Session, user: User, sid: str, current: str, new: str) -> None:
    """Set a new password and sign out every other session of the user.

    A wrong current password counts as a failed login of the account, and a locked account cannot
    change it either: a stolen access token must not become a way to guess the password.
    """
    require(user, Permission.MANAGE_AUTH, user)
    prove_password(user, current, field="current_password")
    validation.collect({"new_password": lambda: validation.password(new)})
    user = session.get(User, user.id)  # the caller may be a detached snapshot (see tokens.load_principal)
    user.password_hash = passwords.hash(new)
    revoke_sessions(session, user.id, keep=sid)
    session.commit()


def prove_password(user: User, password: str, *, field: str) -> None:
    """The signed-in caller's own password again, or Forbidden naming `field`.

    A wrong one counts as a failed login of the account, and a locked account is refused: a
    stolen access token must not become a way to guess the password.
    """
    limits = guard()
    limits.check("RATELIMIT_LOGIN_FAILURES", user.email)  # the key login counts under
    if not passwords.verify(user.password_hash, password or ""):
        limits.hit("RATELIMIT_LOGIN_FAILURES", user.email)
        # 403, not 422: the request is well-formed but the caller has not proven it is them.
        raise Forbidden("The current password is wrong.", errors={field: ["Wrong password."]})


def list_sessions(session: Session, user: User, current_sid: str | None) -> list[dict]:
    """The user's live sessions (one per refresh family), newest first, the current one flagged."""
    require(user, Permission.MANAGE_AUTH, user)
    rows = session.scalars(
        select(AuthSession)
        .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None),
               AuthSession.expires_at > utcnow())
        .order_by(AuthSession.created_at.desc())
        .limit(100)
    )
    return [{"id": row.id, "created_at": row.created_at, "last_used_at": row.last_used_at,
             "user_agent": row.user_agent, "ip": row.ip, "current": row.id == current_sid}
            for row in rows]


def revoke_session(session: Session, user: User, sid: str) -> None:
    """Sign one of the user's own sessions out at once; someone else's is simply not found."""
    require(user, Permission.MANAGE_AUTH, user)
    revoked = session.execute(
        update(AuthSession)
        .where(AuthSession.id == sid, AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount
    if not revoked:
        session.rollback()
        raise NotFound("Session not found.")
    _announce_revoked(session, sid, user.id)
    session.commit()
