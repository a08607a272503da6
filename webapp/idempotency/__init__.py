"""`Idempotency-Key` on every REST POST: performed once per caller and key, replayed after.

The key is recorded in the same transaction as the write it guards, so the two commit or vanish
together: no crash, restart or retry can perform a write twice or leave a key stuck. (Claiming
the key in a transaction of its own and finishing it in another, as before, left a key "in
progress" whenever the process or the database died between the write's commit and the key's,
and the write was done again once the claim went stale.)

- Before the view: a finished row for `(caller, key)` with the same fingerprint (method, path,
  query and body) is replayed — status, body, Content-Type, Location, ETag — with
  `Idempotent-Replayed: true`; the same key with another request is 422. Otherwise the request's
  session defers its commits (`AppSession.commit` only flushes, webapp/db.py) and the view runs.
  Nothing is claimed, so a request that dies leaves nothing behind and a retry runs at once.
- After the view (an `after_this_request` callback, so the logging, security and CORS hooks see
  the final answer): when the view asked to commit and answered below 500, the key row with its
  answer joins the view's writes and the one real commit happens (cache versions and the task
  outbox follow in `after_commit`, once). A concurrent request with the same key that committed
  first makes that INSERT fail on the unique constraint (PostgreSQL makes it wait for the other
  transaction, at most IDEMPOTENCY_WAIT_SECONDS, then 409 + Retry-After); everything this
  request did is rolled back and the winner's answer is replayed instead.
- A success that wrote nothing (a 202 that only queued work) is remembered on its own. A refusal
  decided before any write (401, 403, 404, 409, 422, 429...) and every 5xx roll back and release
  the key, as at Stripe: a retry after fixing the cause is performed. A refusal that lost a race
  to a finished request with the same key is answered with that request's stored answer.
- `/api/v1/auth/*` ignores the header: token answers are never stored or replayed, and a replayed
  refresh request meets refresh-token reuse detection like any other.

The caller is `user:<id>` from the access token or `anonymous`: anonymous keys share one
namespace, which is safe because a replay needs the same body (a sign-up's password included).
Keys expire after IDEMPOTENCY_TTL_HOURS (24); `purge_expired` deletes old rows (scheduled).
The OpenAPI documents the header on every POST through an apispec plugin (`OpenAPIPlugin`), which
the factory hands the REST door's Api: this module never imports a door.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import timedelta

from apispec import BasePlugin
from flask import Response, after_this_request, current_app, g, request
from flask_jwt_extended import decode_token
from sqlalchemy import delete, or_, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from webapp.auth.current import pat_principal, presented_pat
from webapp.db import utcnow
from webapp.errors import Unavailable, envelope
from webapp.extensions import db
from webapp.idempotency.models import IdempotencyKey

log = logging.getLogger("webapp.idempotency")

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEPT_HEADERS = ("Content-Type", "Location", "ETag")
KEY_MAX = 255
KEY_PATTERN = re.compile(r"[!-~]{1,%d}" % KEY_MAX)  # visible ASCII: UUIDs, ULIDs, base64 and the like
IGNORED_PREFIX = "/api/v1/auth/"  # live tokens: never stored, never replayed
IN_PROGRESS = "A request with this Idempotency-Key is in progress; retry shortly."
LOCK_TIMEOUT = "55P03"  # PostgreSQL's lock_not_available


def init_app(app) -> None:
    app.before_request(_begin)
    app.teardown_request(_reset)


def purge_expired(session) -> int:
    """Delete expired keys; returns how many (run it from a periodic task)."""
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utcnow()))
    session.commit()
    return result.rowcount


def _applies() -> bool:
    if request.method != "POST":  # reads pay one comparison
        return False
    path = request.path
    return path.startswith("/api/") and not path.startswith(IGNORED_PREFIX) and HEADER in request.headers


def _caller() -> str:
    pat = presented_pat()
    if pat is not None:
        try:
            return f"user:{pat_principal(pat).id}"
        except Exception:  # refused: the view answers 401 and the key stays free
            return "anonymous"
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        try:
            claims = decode_token(header[7:].strip())
            if claims.get("type") == "access":
                return f"user:{claims['sub']}"
        except Exception:  # a bad token: the view answers 401 and the key stays free
            pass
    return "anonymous"


def _fingerprint() -> str:
    digest = hashlib.sha256(f"{request.method} {request.path}?{request.query_string.decode()}\n".encode())
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        for name, value in sorted(request.form.items(multi=True)):
            digest.update(f"{name}={value}\n".encode())
        for name, upload in sorted(request.files.items(multi=True), key=lambda item: item[0]):
            digest.update(f"{name}:{upload.filename}:".encode())
            digest.update(hashlib.sha256(upload.stream.read()).digest())
            upload.stream.seek(0)
    else:
        digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _stored(caller: str, key: str):
    """The row for `(caller, key)`, live or not, or None; read outside the request's transaction."""
    stmt = select(IdempotencyKey.fingerprint, IdempotencyKey.status_code, IdempotencyKey.body,
                  IdempotencyKey.headers, IdempotencyKey.expires_at).where(
        IdempotencyKey.caller == caller, IdempotencyKey.key == key)
    with db.reader() as connection:
        return connection.execute(stmt).first()


def _live(row) -> bool:
    """A finished answer still kept (NULL status: a claim left by the previous design, ignored)."""
    return row is not None and row.status_code is not None and row.expires_at > utcnow()


def _answer(row, fingerprint: str):
    if row.fingerprint != fingerprint:
        return _error(422, f"This {HEADER} was already used for a different request.",
                      {HEADER: ["Reused with a different request."]})
    response = Response(row.body, status=row.status_code, headers=json.loads(row.headers))
    response.headers[REPLAYED] = "true"
    return response


def _error(code: int, message: str, errors: dict | None = None, retry_after: str | None = None) -> Response:
    response = current_app.json.response(envelope(code, message, errors))
    response.status_code = code
    if retry_after:
        response.headers["Retry-After"] = retry_after
    return response


def _begin():
    if not _applies():
        return None
    key = request.headers[HEADER]
    if not KEY_PATTERN.fullmatch(key):
        return _error(422, f"{HEADER} must be 1 to {KEY_MAX} visible ASCII characters (no spaces).",
                      {HEADER: ["Invalid key."]})
    caller, fingerprint = _caller(), _fingerprint()
    row = _stored(caller, key)
    if _live(row):
        return _answer(row, fingerprint)
    g.idempotency = (caller, key, fingerprint, row is not None)  # last: a dead row to clear first
    db.session.info["defer_commit"] = True
    after_this_request(_finish)
    return None


def _finish(response: Response) -> Response:
    """Commit the view's writes with the key, or roll them back; never raises."""
    state = g.pop("idempotency", None)
    if state is None:  # already handled (Flask runs this again when a later hook fails)
        return response
    session = db.session
    info = session.info
    info.pop("defer_commit", None)
    requested = info.pop("commit_requested", False)
    discarded = info.pop("commit_discarded", False)
    status = response.status_code
    try:
        if status >= 500 or response.is_streamed:
            session.rollback()
            return response
        if discarded and status < 400:
            # A rollback threw away a write the view believed committed: its success is not true.
            session.rollback()
            log.error("a deferred commit was rolled back by %s %s; answering 500", request.method, request.path)
            return _error(500, "The request could not be completed; it was not performed.")
        if not requested:
            session.rollback()  # what the view left uncommitted is dropped, as without the header
            if status >= 400:  # a refusal: the key stays free, unless a twin finished meanwhile
                return _twin_answer(state) or response
        return _commit_with_key(session, state, response)
    except Exception:
        log.exception("idempotent request could not be finished")
        _quietly_roll_back(session)
        return _error(500, "The request could not be completed; it was not performed.")


def _twin_answer(state) -> Response | None:
    """The stored answer of a request with the same key that finished meanwhile, if any."""
    try:
        row = _stored(*state[:2])
    except Exception:  # the database is gone too: the refusal stands
        return None
    return _answer(row, state[2]) if _live(row) else None


def _commit_with_key(session, state, response: Response) -> Response:
    caller, key, fingerprint, dead_row = state
    now = utcnow()
    ttl = timedelta(hours=current_app.config["IDEMPOTENCY_TTL_HOURS"])
    try:
        if session.get_bind().dialect.name == "postgresql":
            wait = max(1, int(current_app.config["IDEMPOTENCY_WAIT_SECONDS"] * 1000))
            session.execute(text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": f"{wait}ms"})
        if dead_row:  # an expired row (or a claim of the previous design) gives way, in this transaction
            session.execute(delete(IdempotencyKey).where(
                IdempotencyKey.caller == caller, IdempotencyKey.key == key,
                or_(IdempotencyKey.expires_at <= now, IdempotencyKey.status_code.is_(None))))
        session.add(IdempotencyKey(
            caller=caller, key=key, fingerprint=fingerprint, created_at=now, expires_at=now + ttl,
            status_code=response.status_code, body=response.get_data(),
            headers=json.dumps({name: response.headers[name] for name in KEPT_HEADERS if name in response.headers})))
        session.commit()
    except IntegrityError:  # a request with the same key committed first: answer as it did
        _quietly_roll_back(session)
        return _twin_answer(state) or _error(409, IN_PROGRESS, retry_after="1")
    except OperationalError as exc:
        _quietly_roll_back(session)
        if _lock_wait_timed_out(exc):
            return _error(409, IN_PROGRESS, retry_after="1")
        log.warning("database unavailable at commit: %s", type(exc.orig).__name__ if exc.orig else exc)
        return _error(503, Unavailable.default_message, retry_after="5")
    return response


def _lock_wait_timed_out(exc: OperationalError) -> bool:
    orig = exc.orig
    return getattr(orig, "sqlstate", None) == LOCK_TIMEOUT or "database is locked" in str(orig)


def _quietly_roll_back(session) -> None:
    try:
        session.rollback()
    except Exception:  # the connection is gone: the pool discards it, nothing was committed
        pass


def _reset(_exc=None) -> None:
    """Leave no deferral behind if `_finish` never ran and the app context outlives the request."""
    if g.pop("idempotency", None) is not None and db.session.registry.has():
        for name in ("defer_commit", "commit_requested", "commit_discarded"):
            db.session.info.pop(name, None)


class OpenAPIPlugin(BasePlugin):
    """Documents the header on every POST of the OpenAPI (/auth/* aside), as each path is added.

    An apispec plugin (`spec_kwargs={"extra_plugins": [...]}`) sees each operation through the
    public `operation_helper`, instead of editing the finished spec's private path table.
    """

    def init_spec(self, spec) -> None:
        spec.components.parameter("IdempotencyKey", "header", {
            "name": HEADER, "in": "header", "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": KEY_MAX, "pattern": "^[!-~]+$"},
            "description": "Optional. Repeat a POST with the same key and body to get the first response again "
                           "(kept 24 h, `Idempotent-Replayed: true`); the same key with a different body is 422. "
                           "The key is recorded with the write, in one transaction: a refusal made before any write "
                           "(401, 403, 404, 422, 429) or a 5xx leaves it free for a retry.",
        })

    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        if operations and "post" in operations and not (path or "").startswith(IGNORED_PREFIX):
            operations["post"].setdefault("parameters", []).append("IdempotencyKey")  # a $ref to the above
