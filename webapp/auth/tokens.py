"""JWTs: what they carry (a user id and a session id, no personal data) and how they are checked.

Every access token names its session (`sid`). One query per request loads the user
together with that session, so a revoked session, a deactivated or deleted user, or a
demotion takes effect on the very next request, on every host.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

from flask import current_app, g, jsonify
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from sqlalchemy import bindparam, select

from webapp.auth.models import AuthSession
from webapp.compat import sqlalchemy as orm_compat
from webapp.db import MAX_ID, utcnow
from webapp.errors import Unauthenticated, envelope
from webapp.extensions import db, jwt
from webapp.users.models import Profile, User


def new_jti() -> str:
    return str(uuid.uuid4())


def issue_pair(auth_session: AuthSession) -> dict:
    """An access token and the session's current refresh token, as the login body."""
    minutes = current_app.config["ACCESS_TOKEN_MINUTES"]
    identity = str(auth_session.user_id)
    claims = {"sid": auth_session.id}
    access = create_access_token(
        identity, additional_claims=claims, expires_delta=timedelta(minutes=minutes)
    )
    refresh = create_refresh_token(
        identity,
        additional_claims={**claims, "jti": auth_session.current_jti,
                           "exp": int(auth_session.expires_at.timestamp())},
    )
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "bearer",
        "expires_in": minutes * 60,
    }


def decode_refresh(token: str) -> dict:
    """Decode a refresh token or raise Unauthenticated (bad signature, expired, wrong type)."""
    try:
        claims = decode_token(token)
    except Exception:
        raise Unauthenticated("Invalid or expired refresh token.") from None
    if claims.get("type") != "refresh" or "sid" not in claims:
        raise Unauthenticated("Invalid or expired refresh token.")
    return claims


_users, _profiles, _sessions = User.__table__, Profile.__table__, AuthSession.__table__
PRINCIPAL_COLUMNS = (*_users.c, *[c.label(f"profile_{c.name}") for c in _profiles.c])  # a user and its profile
PRINCIPAL = (
    select(*PRINCIPAL_COLUMNS,
           _sessions.c.revoked_at.label("session_revoked_at"), _sessions.c.expires_at.label("session_expires_at"))
    .select_from(_users.join(_sessions, _sessions.c.user_id == _users.c.id)
                 .outerjoin(_profiles, _profiles.c.user_id == _users.c.id))
    .where(_users.c.id == bindparam("user_id"), _sessions.c.id == bindparam("sid"))
)


def load_principal(claims: dict) -> User | None:
    """The live user behind an access token's claims, or None when it must be refused.

    One statement on an autocommit connection (`principal_row`): this runs on every
    authenticated request. The user comes back detached from the request's session,
    with its profile; services that change the caller load it into their session first.
    """
    try:
        user_id = int(claims["sub"])
        sid = str(claims["sid"])
    except (KeyError, TypeError, ValueError):
        return None
    if not 0 < user_id <= MAX_ID:
        return None
    row = principal_row(PRINCIPAL, {"user_id": user_id, "sid": sid})
    if row is None:
        return None
    if row["session_revoked_at"] is not None or row["session_expires_at"] <= utcnow() or not row["is_active"]:
        return None
    return principal_from(row)


def principal_from(row) -> User:
    """The detached User (and Profile) of a row selected with PRINCIPAL_COLUMNS."""
    # Built as the ORM's loader builds rows, without constructor or change events (webapp/compat/sqlalchemy.py).
    user, profile = orm_compat.new_instance(User), None
    if row["profile_user_id"] is not None:
        profile = orm_compat.known_row(orm_compat.new_instance(Profile),
                                       {column.name: row[f"profile_{column.name}"] for column in _profiles.c}, user=user)
    return orm_compat.known_row(user, {column.name: row[column.name] for column in _users.c}, profile=profile)


def principal_row(statement, params: dict) -> dict | None:
    """The one row of a principal's SELECT, on an autocommit connection (no BEGIN/ROLLBACK round trips)."""
    engine = db.engine
    if engine.dialect.name == "postgresql":
        return _row_psycopg(engine, statement, params)
    with db.reader() as connection:
        return connection.execute(statement, params).mappings().first()


_compiled: dict = {}  # (statement, dialect) → (SQL text, result column names)


def _row_psycopg(engine, statement, params: dict) -> dict | None:
    """The statement straight through psycopg, autocommit: on the hottest path SQLAlchemy's
    per-execution work costs more than the round trip itself (measured: ~0.5 ms of ~0.6 ms)."""
    compiled = _compiled.get((statement, engine.dialect))
    if compiled is None:
        compiled = _compiled[(statement, engine.dialect)] = (
            str(statement.compile(dialect=engine.dialect)), [column.key for column in statement.selected_columns])
    sql, names = compiled
    import psycopg
    from sqlalchemy.exc import DBAPIError

    connection = None
    try:
        connection = engine.raw_connection()  # a refused connect surfaces as psycopg's own error
        driver = connection.driver_connection
        driver.autocommit = True
        try:
            with driver.cursor() as cursor:
                cursor.execute(sql, params)
                values = cursor.fetchone()
        finally:
            if not driver.closed:
                driver.autocommit = False
    except Exception as exc:
        if connection is not None:
            connection.invalidate()  # a broken connection must not go back to the pool
        if isinstance(exc, psycopg.Error):  # the same errors (and 503s) as the ORM path
            raise DBAPIError.instance(sql, None, exc, psycopg.Error) from exc
        raise
    finally:
        if connection is not None:
            connection.close()
    return dict(zip(names, values)) if values is not None else None


def _unauthorized(message: str):
    response = jsonify(envelope(401, message))
    response.status_code = 401
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


@jwt.token_in_blocklist_loader
def _is_revoked(_header, claims) -> bool:
    if claims.get("type") != "access":
        return True  # refresh tokens are checked by the refresh service, never here
    g.delta_principal = load_principal(claims)
    return g.delta_principal is None


@jwt.user_lookup_loader
def _lookup(_header, _claims):
    return g.get("delta_principal")


jwt.unauthorized_loader(lambda reason: _unauthorized("Missing bearer token."))
jwt.invalid_token_loader(lambda reason: _unauthorized("Invalid token."))
jwt.expired_token_loader(lambda _h, _c: _unauthorized("Token has expired."))
jwt.revoked_token_loader(lambda _h, _c: _unauthorized("Token has been revoked."))
jwt.user_lookup_error_loader(lambda _h, _c: _unauthorized("Token has been revoked."))
jwt.needs_fresh_token_loader(lambda _h, _c: _unauthorized("Fresh token required."))
jwt.token_verification_failed_loader(lambda _h, _c: _unauthorized("Invalid token."))
