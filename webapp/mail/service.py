"""Send a message at most once per key: claim a row, deliver, record the outcome.

The claim is committed before delivery. If the worker dies during delivery the row stays
`sending` and a redelivered task does not send again (at most once, as the contract asks);
a transient failure marks it `retrying`, which the next attempt may send; the last attempt's
failure is recorded as `failed` and logged.
"""
from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.db import utcnow
from webapp.mail.models import SentEmail
from webapp.mail.transport import PermanentMailError, TransientMailError, build_message, deliver

log = logging.getLogger("webapp.mail")


def send_once(session: Session, config, *, key: str, to: str, subject: str, text: str, html: str,
              last_attempt: bool = True) -> str:
    """Deliver unless `key` was sent (or may have been); returns sent | skipped | failed."""
    row = session.scalar(select(SentEmail).where(SentEmail.key == key).with_for_update())
    if row is None:
        row = SentEmail(key=key, recipient=to, subject=subject[:200], status="sending", attempts=1)
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            return "skipped"  # another worker claimed it a moment ago
    elif row.status in {"sent", "sending", "failed"}:
        if row.status == "sending":
            log.warning("email %s: a previous attempt died mid-send; not sending twice", key)
        session.rollback()
        return "skipped"
    else:
        row.status, row.attempts = "sending", row.attempts + 1
        session.commit()

    message = build_message(config, key=key, to=to, subject=subject, text=text, html=html)
    try:
        deliver(config, message, key=key)
    except TransientMailError as exc:
        row.status, row.error = ("failed" if last_attempt else "retrying"), str(exc)[:2000]
        session.commit()
        if last_attempt:
            log.error("email %s to %s failed after %d attempts: %s", key, to, row.attempts, exc)
        raise
    except PermanentMailError as exc:
        row.status, row.error = "failed", str(exc)[:2000]
        session.commit()
        log.error("email %s to %s refused: %s", key, to, exc)
        return "failed"
    row.status, row.sent_at, row.error = "sent", utcnow(), None
    session.commit()
    return "sent"
