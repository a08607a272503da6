"""The words of each account email, plain text and HTML."""
from __future__ import annotations

from html import escape

from webapp.accounts.models import RESET_PASSWORD, SET_PASSWORD, VERIFY_EMAIL

SUBJECTS = {
    VERIFY_EMAIL: "Verify your email address",
    RESET_PASSWORD: "Reset your password",
    SET_PASSWORD: "Set your password",
}
PATHS = {VERIFY_EMAIL: "/verify-email", RESET_PASSWORD: "/reset-password", SET_PASSWORD: "/reset-password"}
LEADS = {
    VERIFY_EMAIL: "Please confirm that this is your email address.",
    RESET_PASSWORD: "Someone asked to reset the password of your account. If it was not you, ignore this email.",
    SET_PASSWORD: "An account was created for you. Choose a password to start using it.",
}


def render(purpose: str, *, name: str, token: str, base_url: str, hours: int) -> tuple[str, str, str]:
    """(subject, text, html) for a token email; the token is shown too, for API clients."""
    link = f"{base_url.rstrip('/')}{PATHS[purpose]}?token={token}"
    lead = LEADS[purpose]
    text = (f"Hello {name},\n\n{lead}\n\n{link}\n\nOr send this token to the API: {token}\n\n"
            f"The link works once and expires in {hours} hour{'s' if hours != 1 else ''}.\n")
    html = (f"<p>Hello {escape(name)},</p><p>{escape(lead)}</p>"
            f"<p><a href=\"{escape(link)}\">{escape(link)}</a></p>"
            f"<p>Token: <code>{escape(token)}</code></p>"
            f"<p>The link works once and expires in {hours} hour{'s' if hours != 1 else ''}.</p>")
    return SUBJECTS[purpose], text, html


def render_job_done(*, name: str, job_id: int, kind: str, status: str, base_url: str) -> tuple[str, str, str]:
    link = f"{base_url.rstrip('/')}/api/v1/jobs/{job_id}"
    subject = f"Your {kind} job {status}"
    text = f"Hello {name},\n\nJob {job_id} ({kind}) {status}.\n\n{link}\n"
    html = f"<p>Hello {escape(name)},</p><p>Job {job_id} ({escape(kind)}) {escape(status)}.</p><p><a href=\"{escape(link)}\">{escape(link)}</a></p>"
    return subject, text, html
