"""Against Redis with real Celery worker processes: emails and jobs.

Runs when TEST_REDIS_URL is set (e.g. redis://127.0.0.1:6379/5) and FAILS when that Redis
cannot be reached; skipped when it is unset. Each test's workers consume their own queues.
A worker SIGKILLed mid-job is drill A in test_fault_drills.py; the fixtures live in servers.py.
"""
from __future__ import annotations

import io
import re

import pytest

from tests.conftest import PASSWORD
from tests.servers import redis_broker, start_worker, wait_for  # noqa: F401  (fixtures)

pytestmark = pytest.mark.services


def auth(access):
    return {"Authorization": f"Bearer {access}"}


def job_status(client, access, job_id):
    return client.get(f"/api/v1/jobs/{job_id}", headers=auth(access)).get_json()


def test_signup_email_is_sent_by_the_worker(client, start_worker, outbox):
    start_worker()
    response = client.post("/api/v1/users", json={"name": "Wes", "email": "wes@example.com", "password": PASSWORD})
    assert response.status_code == 201
    [message] = wait_for(lambda: outbox("wes@example.com"), what="verification email")
    token = re.search(r"token=([0-9]+\.[A-Za-z0-9_-]+)", message.get_body(("plain",)).get_content()).group(1)
    assert client.post("/api/v1/auth/verify-email", json={"token": token}).status_code == 204


def test_import_and_export_jobs_run_on_the_worker(client, start_worker, make_user, token, outbox):
    admin = make_user(role="admin")
    access = token(admin)
    start_worker()
    csv_file = io.BytesIO(b"name,email\nIda,ida@example.com\nJon,jon@example.com\nBad,bad\n")
    job = client.post("/api/v1/jobs/user-import", data={"file": (csv_file, "u.csv")},
                      content_type="multipart/form-data", headers=auth(access)).get_json()
    # The answer reads the job back after enqueueing: a quick worker may have picked it up already.
    assert job["status"] in ("queued", "running", "succeeded")
    done = wait_for(lambda: (j := job_status(client, access, job["id"]))["status"] == "succeeded" and j,
                    what="import job")
    assert done["progress"] == 100
    report = client.get(f"/api/v1/jobs/{job['id']}/result", headers=auth(access)).get_json()
    assert (report["created"], report["rejected"]) == (2, 1)
    wait_for(lambda: outbox("ida@example.com"), what="set-password email")

    job = client.post("/api/v1/jobs/user-export", json={"format": "csv"}, headers=auth(access)).get_json()
    wait_for(lambda: job_status(client, access, job["id"])["status"] == "succeeded", what="export job")
    result = client.get(f"/api/v1/jobs/{job['id']}/result", headers=auth(access)).get_data(as_text=True)
    assert result.count("\n") == 4  # header + admin + 2 imported
