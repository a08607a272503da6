"""Jobs on the embedded default (eager tasks): export, import, personal export, permissions, CLI."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD


def auth(access):
    return {"Authorization": f"Bearer {access}"}


def test_admin_exports_users_as_csv_with_formulas_escaped(client, door, make_user, token):
    admin = make_user(role="admin", name="Admin")
    make_user(name="=HYPERLINK(\"http://evil\")")
    make_user(name="@SUM(A1)")
    make_user(name="Plain -dash")
    outcome = door.request_user_export(token(admin), "csv")
    assert outcome.ok
    job = outcome.data
    if door.name == "rest":
        assert outcome.raw.status_code == 202
        assert outcome.raw.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    watched = door.get_job(token(admin), job["id"])
    assert watched.data["status"] == "succeeded" and watched.data["progress"] == 100
    assert watched.data["result_url"] == f"/api/v1/jobs/{job['id']}/result"

    result = client.get(f"/api/v1/jobs/{job['id']}/result", headers=auth(token(admin)))
    assert result.status_code == 200
    assert result.mimetype == "text/csv"
    assert "attachment" in result.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(result.get_data(as_text=True))))
    assert [row["name"] for row in rows] == ["Admin", "'=HYPERLINK(\"http://evil\")", "'@SUM(A1)", "Plain -dash"]
    assert "password" not in ",".join(rows[0])


def test_export_as_json(client, make_user, token):
    admin = make_user(role="admin")
    for _ in range(3):
        make_user()
    response = client.post("/api/v1/jobs/user-export", json={"format": "json"}, headers=auth(token(admin)))
    job_id = response.get_json()["id"]
    result = client.get(f"/api/v1/jobs/{job_id}/result", headers=auth(token(admin)))
    users = json.loads(result.get_data(as_text=True))
    assert [user["id"] for user in users] == sorted(user["id"] for user in users)
    assert len(users) == 4 and "password_hash" not in users[0]
    bad = client.post("/api/v1/jobs/user-export", json={"format": "xml"}, headers=auth(token(admin)))
    assert bad.status_code == 422


def test_export_is_for_admins_only(door, make_user, token):
    assert door.request_user_export(token(make_user()), "csv").status == "forbidden"
    assert door.request_user_export(None, "csv").status == "unauthenticated"


def test_export_in_small_batches_reports_rising_progress(app, client, make_user, token, monkeypatch, query_db):
    from webapp.jobs.models import Job

    admin = make_user(role="admin")
    for _ in range(6):
        make_user()
    seen = []
    from webapp.jobs import runner

    real = runner._progress

    def spy(session, job_id, *claim):
        report = real(session, job_id, *claim)

        def wrapped(done, total):
            keep = report(done, total)
            seen.append(session.get(Job, job_id).progress)
            return keep
        return wrapped

    monkeypatch.setitem(app.config, "JOB_BATCH_SIZE", 2)
    monkeypatch.setattr(runner, "_progress", spy)
    job_id = client.post("/api/v1/jobs/user-export", json={}, headers=auth(token(admin))).get_json()["id"]
    assert seen == sorted(seen) and len(seen) == 4 and seen[-1] == 99
    assert query_db(lambda s: s.get(Job, job_id).progress) == 100


def test_cancelling_a_running_job_stops_it_between_batches(app, client, make_user, token, monkeypatch, query_db):
    from webapp.jobs import users_io
    from webapp.jobs.models import Job

    admin = make_user(role="admin")
    for _ in range(4):
        make_user()
    access = token(admin)
    monkeypatch.setitem(app.config, "JOB_BATCH_SIZE", 1)

    def cancel_from_outside():  # another request cancels while the worker is mid-export
        with app.test_client() as other:
            jobs = other.get("/api/v1/jobs", headers=auth(access)).get_json()
            other.delete(f"/api/v1/jobs/{jobs[0]['id']}", headers=auth(access))

    monkeypatch.setattr(users_io, "_pause", cancel_from_outside)
    job = client.post("/api/v1/jobs/user-export", json={}, headers=auth(access)).get_json()
    assert job["status"] == "cancelled" and job["result_url"] is None
    stored = query_db(lambda s: s.get(Job, job["id"]))
    assert stored.status == "cancelled" and stored.result_path is None and stored.progress < 100
    assert client.get(f"/api/v1/jobs/{job['id']}/result", headers=auth(access)).status_code == 409


def _queued_job(query_db, owner_id, kind="user-export"):
    from webapp.jobs.models import Job

    def add(session):
        job = Job(kind=kind, owner_id=owner_id, status="queued", progress=0, params={"format": "csv"})
        session.add(job)
        session.commit()
        return job.id

    return query_db(add)


def test_job_reads_cancel_and_result_rules(client, door, make_user, token, query_db):
    owner, other, admin = make_user(), make_user(), make_user(role="admin")
    job_id = _queued_job(query_db, owner.id)

    assert door.get_job(token(owner), job_id).data["status"] == "queued"
    assert door.get_job(token(admin), job_id).ok
    assert door.get_job(token(other), job_id).status == "not_found"
    assert door.get_job(token(owner), 999999).status == "not_found"

    assert client.get(f"/api/v1/jobs/{job_id}/result", headers=auth(token(owner))).status_code == 409
    assert client.delete(f"/api/v1/jobs/{job_id}", headers=auth(token(other))).status_code == 404
    cancelled = client.delete(f"/api/v1/jobs/{job_id}", headers=auth(token(owner)))
    assert cancelled.status_code == 202 and cancelled.get_json()["status"] == "cancelled"
    again = client.delete(f"/api/v1/jobs/{job_id}", headers=auth(token(owner)))
    assert again.status_code == 409 and again.get_json()["code"] == 409


def test_list_jobs_own_or_all_for_admins_paginated(client, make_user, token, query_db):
    owner, other, admin = make_user(), make_user(), make_user(role="admin")
    for _ in range(3):
        _queued_job(query_db, owner.id)
    _queued_job(query_db, other.id)
    mine = client.get("/api/v1/jobs", headers=auth(token(owner)))
    assert mine.status_code == 200 and len(mine.get_json()) == 3
    assert json.loads(mine.headers["X-Pagination"])["total"] == 3
    everything = client.get("/api/v1/jobs?page_size=2", headers=auth(token(admin)))
    assert len(everything.get_json()) == 2 and json.loads(everything.headers["X-Pagination"])["total"] == 4
    assert client.get("/api/v1/jobs?page_size=101", headers=auth(token(admin))).status_code == 422
    assert client.get("/api/v1/jobs").status_code == 401


def test_graphql_job_query_and_cancel(client, make_user, token, query_db):
    owner = make_user()
    job_id = _queued_job(query_db, owner.id)
    body = client.post("/graphql", headers=auth(token(owner)), json={
        "query": "mutation($id: Int!) { cancelJob(id: $id) { id status } }", "variables": {"id": job_id}}).get_json()
    assert body["data"]["cancelJob"] == {"id": job_id, "status": "cancelled"}


IMPORT_CSV = """name,email,role
Grace Hopper,grace@example.com,
Alan Turing,ALAN@example.com,admin
,blank@example.com,user
Bad Email,not-an-email,
Existing,{existing},
Duplicate,grace@example.com,
Bad Role,role@example.com,superuser
Too Many,cols@example.com,user,extra
"""


def test_import_creates_valid_rows_and_reports_each_row(client, make_user, token, outbox, query_db):
    from webapp.users.models import User

    admin = make_user(role="admin")
    existing = make_user()
    data = {"file": (io.BytesIO(IMPORT_CSV.format(existing=existing.email).encode()), "users.csv")}
    response = client.post("/api/v1/jobs/user-import", data=data, content_type="multipart/form-data",
                           headers=auth(token(admin)))
    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert job["kind"] == "user-import" and "source" not in job["params"]
    report = client.get(f"/api/v1/jobs/{job['id']}/result", headers=auth(token(admin))).get_json()
    assert (report["created"], report["rejected"]) == (2, 6)
    by_row = {row["row"]: row for row in report["rows"]}
    assert by_row[2]["status"] == by_row[3]["status"] == "created"
    assert by_row[4]["errors"] == {"name": ["Must not be blank."]}
    assert by_row[5]["errors"] == {"email": ["Not a valid email address."]}
    assert by_row[6]["errors"] == {"email": ["A user with this email already exists."]}
    assert by_row[7]["errors"] == {"email": ["Appears earlier in this file."]}
    assert "role" in by_row[8]["errors"] and "_row" in by_row[9]["errors"]

    alan = query_db(lambda s: s.scalar(select(User).where(User.email == "alan@example.com")))
    assert alan.role == "admin" and alan.password_hash is None

    # the imported user sets a password through the reset flow, then signs in
    [invite] = outbox("alan@example.com")
    assert invite["Subject"] == "Set your password"
    link = re.search(r"token=([0-9]+\.[A-Za-z0-9_-]+)", invite.get_body(("plain",)).get_content()).group(1)
    assert client.post("/api/v1/auth/login", json={"email": "alan@example.com", "password": PASSWORD}).status_code == 401
    assert client.post("/api/v1/auth/password-reset/confirm",
                       json={"token": link, "new_password": PASSWORD}).status_code == 204
    assert client.post("/api/v1/auth/login", json={"email": "alan@example.com", "password": PASSWORD}).status_code == 200


def test_import_needs_an_admin_and_a_file(client, make_user, token):
    user, admin = make_user(), make_user(role="admin")
    data = {"file": (io.BytesIO(b"a,b@example.com\n"), "u.csv")}
    assert client.post("/api/v1/jobs/user-import", data=data, content_type="multipart/form-data",
                       headers=auth(token(user))).status_code == 403
    missing = client.post("/api/v1/jobs/user-import", data={}, content_type="multipart/form-data",
                          headers=auth(token(admin)))
    assert missing.status_code == 422 and "file" in missing.get_json()["errors"]
    binary = {"file": (io.BytesIO(b"\xff\xfe\x00bad"), "u.csv")}
    assert client.post("/api/v1/jobs/user-import", data=binary, content_type="multipart/form-data",
                       headers=auth(token(admin))).status_code == 422


def test_my_data_export_holds_everything_but_the_password(client, make_user, login):
    user = make_user(name="Me Myself")
    access = login(user)["access_token"]
    response = client.post("/api/v1/users/me/export", headers=auth(access))
    assert response.status_code == 202
    job = response.get_json()
    assert job["kind"] == "account-export" and job["owner_id"] == user.id
    result = client.get(f"/api/v1/jobs/{job['id']}/result", headers=auth(access))
    archive = json.loads(result.get_data(as_text=True))
    assert archive["user"]["email"] == user.email and archive["user"]["name"] == "Me Myself"
    assert len(archive["sessions"]) == 1 and "ip" in archive["sessions"][0]
    assert "password" not in result.get_data(as_text=True)
    assert client.post("/api/v1/users/me/export").status_code == 401


def test_export_done_email_is_sent_to_the_owner(client, make_user, token, outbox):
    admin = make_user(role="admin")
    client.post("/api/v1/jobs/user-export", json={}, headers=auth(token(admin)))
    [done] = [m for m in outbox(admin.email) if "job" in m["Subject"]]
    assert done["Subject"] == "Your user-export job succeeded"


def test_cli_export_and_import(runner, make_user, tmp_path, query_db, outbox):
    from webapp.users.models import User

    make_user(name="+cmd")
    target = tmp_path / "users.csv"
    result = runner.invoke(args=["users", "export", str(target)])
    assert result.exit_code == 0, result.output
    assert "exported 1 users" in result.output
    assert "'+cmd" in target.read_text()

    source = tmp_path / "in.csv"
    source.write_text("Linus,linus@example.com\nbad,nope\n")
    result = runner.invoke(args=["users", "import", str(source)])
    assert result.exit_code == 0, result.output
    assert "created 1, rejected 1" in result.output
    assert query_db(lambda s: s.scalar(select(User.password_hash).where(User.email == "linus@example.com"))) is None
    assert len(outbox("linus@example.com")) == 1

    as_json = tmp_path / "users.json"
    assert runner.invoke(args=["users", "export", str(as_json)]).exit_code == 0
    assert len(json.loads(as_json.read_text())) == 2


def test_housekeeping_purges_dead_records_and_old_jobs(app, make_user, login, client, query_db, token):
    from datetime import timedelta
    from pathlib import Path

    from webapp import housekeeping
    from webapp.accounts.models import AccountToken
    from webapp.auth.models import AuthSession
    from webapp.db import utcnow
    from webapp.jobs.models import Job

    admin = make_user(role="admin")
    access = token(admin)
    job_id = client.post("/api/v1/jobs/user-export", json={}, headers=auth(access)).get_json()["id"]
    result_path = Path(query_db(lambda s: s.get(Job, job_id).result_path))
    assert result_path.is_file()
    stale = login(admin)

    def age(session):
        now = utcnow()
        session.execute(AuthSession.__table__.update().where(
            AuthSession.id != session.scalar(select(AuthSession.id).order_by(AuthSession.created_at)))
            .values(expires_at=now - timedelta(seconds=1)))
        session.execute(AccountToken.__table__.update().values(expires_at=now - timedelta(seconds=1)))
        session.execute(Job.__table__.update().values(finished_at=now - timedelta(days=8)))
        session.commit()

    query_db(age)
    with app.app_context():
        counts = housekeeping.purge_auth_records(db_session())
        assert counts["sessions"] == 1 and counts["tokens"] >= 1
        assert housekeeping.purge_old_jobs(db_session()) == 1
    assert not result_path.exists()
    assert client.get(f"/api/v1/jobs/{job_id}", headers=auth(access)).status_code == 404
    assert client.get("/api/v1/users/me", headers=auth(stale["access_token"])).status_code == 401


def db_session():
    from webapp.extensions import db

    return db.session
