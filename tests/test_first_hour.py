"""A newcomer's first hour: the emailed links open pages, `/` points the way, an export imports back,
the CLI's admins and demo users are verified and its output is not drowned in log lines."""
from __future__ import annotations

import io
import json
import logging
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from tests.conftest import PASSWORD
from tests.test_browser import live_url, rendered_dom  # noqa: F401  (live_url is a fixture)

LINK = re.compile(r"(https?://\S+?/(?:verify-email|reset-password)\?token=[0-9]+\.[A-Za-z0-9_-]+)")


def auth(access):
    return {"Authorization": f"Bearer {access}"}


class PageParts(HTMLParser):
    """The form, its inputs and the scripts of a served page."""

    def __init__(self, html: str):
        super().__init__()
        self.form, self.inputs, self.scripts, self.button = {}, [], [], {}
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.form = attrs
        elif tag == "input":
            self.inputs.append(attrs.get("name"))
        elif tag == "script":
            self.scripts.append(attrs.get("src"))
        elif tag == "button":
            self.button = attrs


def emailed_link(message) -> str:
    """The link of a token email, decoded from its quoted-printable body."""
    return LINK.search(message.get_body(("plain",)).get_content()).group(1)


def open_link(client, link: str):
    parts = urlsplit(link)
    return client.get(f"{parts.path}?{parts.query}")


def user_row(query_db, email):
    from webapp.users.models import User

    return query_db(lambda s: s.scalar(select(User).where(User.email == email)))


# 1. The emailed links open pages that change nothing until their button is pressed.

def test_verify_link_opens_a_page_that_changes_nothing_and_whose_post_verifies(app, client, outbox, query_db):
    assert client.post("/api/v1/users", json={"name": "Ada", "email": "ada@example.com",
                                              "password": PASSWORD}).status_code == 201
    [message] = outbox("ada@example.com")
    link = emailed_link(message)
    assert link.startswith(app.config["PUBLIC_BASE_URL"].rstrip("/") + "/verify-email?token=")

    page = open_link(client, link)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Cache-Control"] == "no-store"  # the token is in the address
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<script>" not in page.get_data(as_text=True)  # no inline script: the CSP would block it
    assert user_row(query_db, "ada@example.com").email_verified is None  # a GET verifies nothing

    parts = PageParts(page.get_data(as_text=True))
    assert parts.form["data-endpoint"] == "/api/v1/auth/verify-email"
    [script] = parts.scripts
    served = client.get(script)
    assert served.status_code == 200 and "javascript" in served.mimetype
    assert "fetch(form.dataset.endpoint" in served.get_data(as_text=True)

    # what the button does: POST the link's token as JSON to the form's endpoint
    token = urlsplit(link).query.removeprefix("token=")
    assert client.post(parts.form["data-endpoint"], json={"token": token}).status_code == 204
    assert user_row(query_db, "ada@example.com").email_verified is not None


def test_reset_link_opens_a_password_page_whose_post_sets_the_password(client, make_user, outbox, query_db):
    user = make_user(email="bo@example.com")
    outbox()  # only the reset email from here on
    assert client.post("/api/v1/auth/password-reset", json={"email": user.email}).status_code == 202
    [message] = [m for m in outbox(user.email) if m["Subject"] == "Reset your password"]
    link = emailed_link(message)

    page = open_link(client, link)
    assert page.status_code == 200 and page.mimetype == "text/html"
    parts = PageParts(page.get_data(as_text=True))
    assert parts.form["data-endpoint"] == "/api/v1/auth/password-reset/confirm"
    assert "new_password" in parts.inputs and "disabled" in parts.button  # enabled by the script
    # opening the page spent nothing: the old password still works, the token still does
    assert client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}).status_code == 200

    token = urlsplit(link).query.removeprefix("token=")
    new = "a brand new passphrase"
    assert client.post(parts.form["data-endpoint"], json={"token": token, "new_password": new}).status_code == 204
    assert client.post("/api/v1/auth/login", json={"email": user.email, "password": new}).status_code == 200


@pytest.mark.browser
def test_verify_page_script_runs_under_the_csp_and_sends_nothing(live_url, tmp_path, client, outbox,  # noqa: F811
                                                                  query_db):
    client.post("/api/v1/users", json={"name": "Cy", "email": "cy@example.com", "password": PASSWORD})
    link = emailed_link(outbox("cy@example.com")[0])
    parts = urlsplit(link)
    dom = rendered_dom(f"{live_url}{parts.path}?{parts.query}", tmp_path)
    assert 'data-state="ready"' in dom  # account-link.js ran (a CSP block would leave it "loading")
    assert user_row(query_db, "cy@example.com").email_verified is None  # a browser opening it changes nothing


# 2. `/`, the favicon, ReDoc without a CDN.

def test_root_points_at_the_docs_and_graphql(client):
    response = client.get("/")
    assert response.status_code == 200
    body = response.get_json()
    for key, path in {"docs": "/docs", "redoc": "/redoc", "openapi": "/openapi.json", "graphql": "/graphql"}.items():
        assert body[key] == path
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 200, path
    assert client.get("/graphql", headers={"Accept": "text/html"}).status_code == 200


def test_root_without_docs_points_at_graphql_only(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "DOCS_ENABLED", False)  # read per request, as production has it
    body = client.get("/").get_json()
    assert body["graphql"] == "/graphql" and "docs" not in body and "openapi" not in body


def test_favicon_is_an_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype.startswith("image/") and response.data[:4] == b"\x00\x00\x01\x00"


def test_redoc_bundle_loads_nothing_from_a_cdn(client):
    response = client.get("/vendor/redoc/bundles/redoc.standalone.js")
    assert response.status_code == 200 and "javascript" in response.mimetype
    body = response.get_data()
    assert b"cdn.redoc.ly" not in body and b"API docs by Redocly" in body  # the credit stays, its logo is local
    again = client.get("/vendor/redoc/bundles/redoc.standalone.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.browser
def test_redoc_page_shows_no_cdn_image(live_url, tmp_path):  # noqa: F811
    dom = rendered_dom(f"{live_url}/redoc", tmp_path)
    assert "Sign in with email and password" in dom and "redocly logo" in dom
    assert "cdn.redoc.ly" not in dom  # the credit's <img> is there, its source is not the CDN


# 3. Export → import round trips; a wrong header fails the whole file.

def _export_then_delete_everyone_but(client, admin_access, admin_id, query_db):
    from webapp.users.models import User

    for user_id in query_db(lambda s: s.scalars(select(User.id).where(User.id != admin_id)).all()):
        assert client.delete(f"/api/v1/users/{user_id}", headers=auth(admin_access)).status_code == 204


def _users(query_db):
    from webapp.users.models import User

    return query_db(lambda s: {u.email: (u.name, u.role) for u in s.scalars(select(User))})


def test_cli_export_imports_back(runner, client, make_user, token, tmp_path, query_db):
    admin = make_user(role="admin", email="root@example.com")
    make_user(name="+Plus Sign", email="plus@example.com")  # a cell the export escapes as '+Plus Sign
    make_user(name="Second Admin", email="second@example.com", role="admin")
    before = _users(query_db)
    exported = tmp_path / "users.csv"
    result = runner.invoke(args=["users", "export", str(exported)])
    assert result.exit_code == 0, result.output
    assert "'+Plus Sign" in exported.read_text()
    _export_then_delete_everyone_but(client, token(admin), admin.id, query_db)

    result = runner.invoke(args=["users", "import", str(exported)])
    assert result.exit_code == 0, result.output
    assert "created 2, rejected 1" in result.output  # the admin who stayed is the one rejection
    report = json.loads((tmp_path / "users.csv.report.json").read_text())
    [rejected] = [row for row in report["rows"] if row["status"] == "rejected"]
    assert rejected["email"] == "root@example.com" and list(rejected["errors"]) == ["email"]
    assert _users(query_db) == before  # names (unescaped), emails and roles as they were


def test_cli_import_refuses_a_wrong_header_and_exits_non_zero(runner, tmp_path, query_db):
    from webapp.users.models import User

    source = tmp_path / "people.csv"
    source.write_text("full_name,mail\nLinus,linus@example.com\n")
    result = runner.invoke(args=["users", "import", str(source)])
    assert result.exit_code != 0
    assert "name and email" in result.output and "full_name" in result.output
    assert query_db(lambda s: s.scalar(select(func.count()).select_from(User))) == 0
    assert not (tmp_path / "people.csv.report.json").exists()


def test_job_export_imports_back_and_a_wrong_header_fails_the_job(client, make_user, token, query_db):
    admin = make_user(role="admin")
    make_user(name="=Formula", email="formula@example.com")
    before = _users(query_db)
    access = token(admin)
    job = client.post("/api/v1/jobs/user-export", json={"format": "csv"}, headers=auth(access)).get_json()
    exported = client.get(f"/api/v1/jobs/{job['id']}/result", headers=auth(access)).get_data()
    _export_then_delete_everyone_but(client, access, admin.id, query_db)

    upload = {"file": (io.BytesIO(exported), "users.csv")}
    response = client.post("/api/v1/jobs/user-import", data=upload, content_type="multipart/form-data",
                           headers=auth(access))
    assert response.status_code == 202
    job = client.get(f"/api/v1/jobs/{response.get_json()['id']}", headers=auth(access)).get_json()
    assert job["status"] == "succeeded"
    report = client.get(job["result_url"], headers=auth(access)).get_json()
    assert (report["created"], report["rejected"]) == (1, 1)
    assert _users(query_db) == before

    wrong = {"file": (io.BytesIO(b"user,address\nLinus,linus@example.com\n"), "users.csv")}
    response = client.post("/api/v1/jobs/user-import", data=wrong, content_type="multipart/form-data",
                           headers=auth(access))
    job = client.get(f"/api/v1/jobs/{response.get_json()['id']}", headers=auth(access)).get_json()
    assert job["status"] == "failed"
    assert "header" in job["error"] and "name and email" in job["error"] and "address" in job["error"]
    assert client.get(f"/api/v1/jobs/{job['id']}/result", headers=auth(access)).status_code == 409
    assert user_row(query_db, "linus@example.com") is None


# 4. create-admin and seed: verified, no verification email; the CLI logs warnings only.

def _sent(query_db):
    from webapp.mail.models import SentEmail

    return query_db(lambda s: s.scalar(select(func.count()).select_from(SentEmail)))


def test_create_admin_is_verified_can_post_and_gets_no_email(runner, client, outbox, query_db):
    result = runner.invoke(args=["create-admin", "--email", "root@example.com", "--name", "Root",
                                 "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    assert outbox() == [] and _sent(query_db) == 0
    access = client.post("/api/v1/auth/login", json={"email": "root@example.com", "password": PASSWORD}
                         ).get_json()["access_token"]
    posted = client.post("/api/v1/posts", json={"title": "First", "content": "At once", "published": True},
                         headers=auth(access))
    assert posted.status_code == 201, posted.get_json()


def test_seed_sends_no_verification_email(runner, outbox, query_db):
    result = runner.invoke(args=["seed", "--users", "3", "--posts", "1"])
    assert result.exit_code == 0, result.output
    assert outbox() == [] and _sent(query_db) == 0
    assert user_row(query_db, "demo0@example.com").email_verified is not None


def test_cli_logs_warnings_only_unless_verbose(runner, app):
    import click

    from webapp.observability import quiet_logs

    seen = []

    class Catch(logging.Handler):
        def emit(self, record):
            seen.append(record.levelname)

    @click.command("speak")
    @quiet_logs
    def speak():
        logging.getLogger("webapp.test").info("an info line")
        logging.getLogger("webapp.test").warning("a warning")

    handler = Catch()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)  # LOG_LEVEL's default
    try:
        app.cli.add_command(speak)
        assert runner.invoke(args=["speak"]).exit_code == 0
        assert seen == ["WARNING"]
        seen.clear()
        assert runner.invoke(args=["speak", "--verbose"]).exit_code == 0
        assert seen == ["INFO", "WARNING"]
        assert root.level == logging.INFO  # the app's level is back once the command is done
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        app.cli.commands.pop("speak", None)


def test_mail_token_prints_the_token_of_the_emailed_link(runner, client, outbox):
    client.post("/api/v1/users", json={"name": "Di", "email": "di@example.com", "password": PASSWORD})
    link = emailed_link(outbox("di@example.com")[0])
    result = runner.invoke(args=["mail", "token", "Di@Example.com"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert link.endswith(f"token={token}")
    assert client.post("/api/v1/auth/verify-email", json={"token": token}).status_code == 204
    missing = runner.invoke(args=["mail", "token", "nobody@example.com"])
    assert missing.exit_code != 0 and "No email" in missing.output


@pytest.mark.parametrize("command", [["seed", "--help"], ["users", "import", "--help"], ["create-admin", "--help"]])
def test_cli_commands_offer_verbose(runner, command):
    assert "--verbose" in runner.invoke(args=command).output
