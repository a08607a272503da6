"""Email tasks (queue `email`): each builds its message from ids and sends it at most once."""
from __future__ import annotations

from celery import shared_task
from flask import current_app
from sqlalchemy.exc import OperationalError

from webapp.accounts import services as accounts
from webapp.extensions import db
from webapp.jobs.runner import job_done_email
from webapp.mail.service import send_once
from webapp.mail.transport import TransientMailError

RETRY = dict(bind=True, autoretry_for=(TransientMailError, OperationalError), max_retries=6,
             retry_backoff=5, retry_backoff_max=600, retry_jitter=True)


def _send(task, email: dict | None) -> str:
    if email is None:
        return "skipped"
    last = task.request.retries >= task.max_retries
    return send_once(db.session, current_app.config, **email, last_attempt=last)


@shared_task(name="delta.email.send_token_email", **RETRY)
def send_token_email(self, token_id: int) -> str:
    """Verification, reset or set-your-password email for one token row."""
    return _send(self, accounts.token_email(db.session, token_id))


@shared_task(name="delta.email.password_reset", **RETRY)
def password_reset(self, email: str, request_key: str) -> str:
    """Look the account up here, not in the request, so both answers take the same time."""
    row = accounts.prepare_password_reset(db.session, email, request_key)
    if row is None:
        return "no-account"
    return _send(self, accounts.token_email(db.session, row.id))


@shared_task(name="delta.email.job_finished", **RETRY)
def job_finished(self, job_id: int) -> str:
    return _send(self, job_done_email(db.session, job_id))
