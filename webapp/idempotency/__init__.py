"""`Idempotency-Key` for every REST POST: performed once per caller and key, replayed after.

Two app hooks wrap every POST under /api/ that carries the header, so each blueprint (and
any added later) gets it without a decorator:

- before the view: claim `(caller, key)` with an INSERT (the unique constraint makes the
  claim atomic across workers and hosts). A finished claim with the same fingerprint (method,
  path, query and body) is replayed — status, body, Content-Type, Location, ETag — with
  `Idempotent-Replayed: true`; a different request under the same key is 422; a claim still
  running is 409 (a crashed claim is taken over after `STALE_AFTER`).
- after the view: store the response; 5xx, 401 and 429 release the key instead, so a retry runs.

The caller is `user:<id>` from the access token or `anonymous`: anonymous keys share one
namespace, which is safe because a replay needs the same body (a sign-up's password included).
Keys expire after IDEMPOTENCY_TTL_HOURS (24); `purge_expired` deletes old rows (schedule it).
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import timedelta

from flask import Response, current_app, g, request
from flask_jwt_extended import decode_token
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from webapp.db import utcnow
from webapp.extensions import db
from webapp.idempotency.models import IdempotencyKey
from webapp.rest.api import envelope

log = logging.getLogger("webapp.idempotency")

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEPT_HEADERS = ("Content-Type", "Location", "ETag")
KEY_MAX = 255
KEY_PATTERN = re.compile(r"[!-~]{1,%d}" % KEY_MAX)  # visible ASCII: UUIDs, ULIDs, base64 and the like
STALE_AFTER = timedelta(minutes=2)
RELEASED_STATUSES = {401, 429}


def init_app(app) -> None:
    app.before_request(_claim)
    app.after_request(_store)
    _document()


def purge_expired(session) -> int:
    """Delete expired keys; returns how many (run it from a periodic task)."""
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utcnow()))
    session.commit()
    return result.rowcount


def _applies() -> bool:
    return request.method == "POST" and request.path.startswith("/api/") and HEADER in request.headers


def _caller() -> str:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        try:
            claims = decode_token(header[7:].strip())
            if claims.get("type") == "access":
                return f"user:{claims['sub']}"
        except Exception:  # a bad token: the view answers 401 and the key is released
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


def _find(session, caller: str, key: str):
    return session.scalar(select(IdempotencyKey).where(IdempotencyKey.caller == caller, IdempotencyKey.key == key))


def _claim():
    if not _applies():
        return None
    key = request.headers[HEADER]
    if not KEY_PATTERN.fullmatch(key):
        return envelope(422, f"{HEADER} must be 1 to {KEY_MAX} visible ASCII characters (no spaces).",
                        {HEADER: ["Invalid key."]}), 422
    caller, fingerprint, now = _caller(), _fingerprint(), utcnow()
    session = db.session
    row = _find(session, caller, key)
    if row is not None and row.expires_at <= now:
        session.delete(row)
        session.commit()
        row = None
    if row is None:
        ttl = timedelta(hours=current_app.config["IDEMPOTENCY_TTL_HOURS"])
        row = IdempotencyKey(caller=caller, key=key, fingerprint=fingerprint, created_at=now, expires_at=now + ttl)
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # another worker claimed it a moment ago
            session.rollback()
            row = _find(session, caller, key)
            if row is None:
                return envelope(409, "A request with this Idempotency-Key is in progress."), 409, {"Retry-After": "1"}
        else:
            g.idempotency_id = row.id
            return None
    if row.fingerprint != fingerprint:
        return envelope(422, f"This {HEADER} was already used for a different request.",
                        {HEADER: ["Reused with a different request."]}), 422
    if row.status_code is None:
        if now - row.created_at < STALE_AFTER:
            return envelope(409, "A request with this Idempotency-Key is in progress."), 409, {"Retry-After": "1"}
        row.created_at = now  # the first attempt died mid-request: this one takes over
        session.commit()
        g.idempotency_id = row.id
        return None
    response = Response(row.body, status=row.status_code, headers=json.loads(row.headers))
    response.headers[REPLAYED] = "true"
    return response


def _store(response: Response) -> Response:
    row_id = g.pop("idempotency_id", None)
    if row_id is None:
        return response
    session = db.session
    try:
        session.rollback()  # whatever the view left unfinished is not ours to commit
        row = session.get(IdempotencyKey, row_id)
        if row is None:
            return response
        if response.status_code >= 500 or response.status_code in RELEASED_STATUSES or response.is_streamed:
            session.delete(row)
        else:
            row.status_code = response.status_code
            row.body = response.get_data()
            row.headers = json.dumps({name: response.headers[name] for name in KEPT_HEADERS if name in response.headers})
        session.commit()
    except Exception:
        session.rollback()
        log.exception("could not store the idempotent response")
    return response


def _document() -> None:
    """Document the header on every POST of the OpenAPI (registered blueprints only)."""
    from webapp.extensions import api

    api.spec.components.parameter("IdempotencyKey", "header", {
        "name": HEADER, "in": "header", "required": False, "schema": {"type": "string", "minLength": 1, "maxLength": KEY_MAX,
                                                              "pattern": "^[!-~]+$"},
        "description": "Optional. Repeat a POST with the same key and body to get the first response again "
                       "(kept 24 h); the same key with a different body is 422.",
    })
    for operations in api.spec._paths.values():
        if "post" in operations:
            operations["post"].setdefault("parameters", []).append({"$ref": "#/components/parameters/IdempotencyKey"})
