"""SMTP delivery against a real SMTP server (aiosmtpd) on a free loopback port."""
from __future__ import annotations

import email
import socket
from email import policy

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD

aiosmtpd = pytest.importorskip("aiosmtpd.controller")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """An aiosmtpd handler that keeps messages, or answers 4xx while `busy` is set."""

    def __init__(self):
        self.messages, self.busy, self.logins = [], False, []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.busy:
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"


def authenticator(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult

    ok = auth_data.login == b"mailer" and auth_data.password == b"s3cret"
    return AuthResult(success=ok)


@pytest.fixture
def smtp(app, monkeypatch):
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False, auth_required=False)
    controller.start()
    monkeypatch.setitem(app.config, "SMTP_URL", f"smtp://mailer:s3cret@127.0.0.1:{port}")
    monkeypatch.setitem(app.config, "SMTP_TIMEOUT", 5)
    inbox.port = port
    yield inbox
    controller.stop()


def test_signup_email_goes_through_smtp_with_text_and_html(client, smtp, outbox):
    response = client.post("/api/v1/users", json={"name": "Sam", "email": "sam@example.com", "password": PASSWORD})
    assert response.status_code == 201
    [message] = smtp.messages
    assert message["To"] == "sam@example.com"
    assert message["Subject"] == "Verify your email address"
    assert "token=" in message.get_body(("plain",)).get_content()
    assert "<a href=" in message.get_body(("html",)).get_content()
    assert outbox() == []  # SMTP configured: nothing in the outbox


def test_4xx_is_retried_then_recorded_as_failed(app, client, smtp, query_db, caplog):
    from webapp.mail.models import SentEmail

    smtp.busy = True
    response = client.post("/api/v1/users", json={"name": "Tim", "email": "tim@example.com", "password": PASSWORD})
    assert response.status_code == 201  # the sign-up never waits on mail
    row = query_db(lambda s: s.scalar(select(SentEmail)))
    assert row.status == "failed" and row.attempts == 7  # first try + 6 retries (eager: no waiting)
    assert "451" in row.error
    assert any("failed after 7 attempts" in record.getMessage() for record in caplog.records)
    assert smtp.messages == []


def test_a_transient_failure_then_success_sends_once(app, smtp, query_db):
    from webapp.extensions import db
    from webapp.mail.service import send_once
    from webapp.mail.transport import TransientMailError

    smtp.busy = True
    with app.app_context():
        with pytest.raises(TransientMailError):
            send_once(db.session, app.config, key="test:1", to="x@example.com", subject="Hi",
                      text="t", html="<p>t</p>", last_attempt=False)
        smtp.busy = False
        assert send_once(db.session, app.config, key="test:1", to="x@example.com", subject="Hi",
                         text="t", html="<p>t</p>") == "sent"
        assert send_once(db.session, app.config, key="test:1", to="x@example.com", subject="Hi",
                         text="t", html="<p>t</p>") == "skipped"
    assert len(smtp.messages) == 1


def test_a_dead_server_is_transient(app, smtp):
    from webapp.mail.transport import TransientMailError, build_message, deliver

    message = build_message(app.config, key="k", to="x@example.com", subject="s", text="t", html="h")
    config = dict(app.config)
    config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"
    with pytest.raises(TransientMailError):
        deliver(config, message, key="k")
