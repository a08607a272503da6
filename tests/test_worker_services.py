"""Against Redis with real Celery worker processes: emails and jobs, and a worker SIGKILLed mid-job.

Runs when TEST_REDIS_URL is set (e.g. redis://127.0.0.1:6379/5) and FAILS when that Redis
cannot be reached; skipped when it is unset. Each test's workers consume their own queues.
"""
from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD

pytestmark = pytest.mark.services
ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL")
VISIBILITY = 3  # seconds: short, so a killed worker's task comes back quickly


@pytest.fixture
def redis_broker(app, monkeypatch):
    """Point the app's Celery at TEST_REDIS_URL with queues of its own; fail if Redis is down."""
    if not REDIS_URL:
        pytest.skip("TEST_REDIS_URL is not set")
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"TEST_REDIS_URL={REDIS_URL} is set but Redis is unreachable: {exc}")
    from tasks import celery_init_app

    prefix = f"test-{uuid.uuid4().hex[:8]}-"
    healthy = app.extensions["celery"]
    monkeypatch.setitem(app.config, "CELERY_BROKER_URL", REDIS_URL)
    monkeypatch.setitem(app.config, "CELERY_QUEUE_PREFIX", prefix)
    monkeypatch.setitem(app.config, "CELERY_VISIBILITY_TIMEOUT", VISIBILITY)
    celery_init_app(app)
    yield prefix
    app.extensions["celery"] = healthy
    healthy.set_default()
    for key in client.scan_iter(f"*{prefix}*"):
        client.delete(key)
    client.delete("unacked", "unacked_index")


@pytest.fixture
def start_worker(app, redis_broker, tmp_path):
    """Start `celery -A tasks.worker worker` processes on this test's queues; killed at the end."""
    workers = []
    env = {key: value for key, value in os.environ.items()
           if key not in {"REDIS_URL", "TEST_DATABASE_URL", "SMTP_URL", "APP_ENV"}}
    env.update({
        "APP_ENV": "development", "PYTHONPATH": str(ROOT),
        "INSTANCE_PATH": str(app.config["INSTANCE_PATH"]), "DATABASE_URL": app.config["DATABASE_URL"],
        "SECRET_KEY": app.config["SECRET_KEY"], "JWT_SECRET_KEY": app.config["JWT_SECRET_KEY"],
        "CELERY_BROKER_URL": REDIS_URL, "CELERY_QUEUE_PREFIX": redis_broker,
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY), "JOB_BATCH_SIZE": "2", "JOB_BATCH_DELAY": "0.3",
        "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024",
    })

    def start():
        log = tmp_path / f"worker-{len(workers)}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks.worker", "worker", "--pool=solo",
             "-Q", f"{redis_broker}email,{redis_broker}heavy", "-n", f"{uuid.uuid4().hex[:6]}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--loglevel=INFO", f"--logfile={log}"],
            cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        workers.append(process)
        wait_for(lambda: log.exists() and "ready." in log.read_text(), timeout=30,
                 what=f"worker start ({log})")
        return process

    yield start
    for process in workers:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def wait_for(condition, *, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


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
    assert job["status"] == "queued"
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


def test_worker_killed_mid_export_then_job_completes_once(app, client, start_worker, make_user, token,
                                                          outbox, query_db):
    from webapp.jobs.models import Job
    from webapp.mail.models import SentEmail

    admin = make_user(role="admin")
    for _ in range(11):
        make_user(verified=True)
    access = token(admin)
    first = start_worker()
    job = client.post("/api/v1/jobs/user-export", json={"format": "csv"}, headers=auth(access)).get_json()
    # 12 users, 2 per batch, 0.3 s a batch: kill it once it is visibly under way
    wait_for(lambda: 0 < job_status(client, access, job["id"])["progress"] < 60, what="export under way")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(5)
    killed = job_status(client, access, job["id"])
    assert killed["status"] == "running" and killed["progress"] < 100

    time.sleep(VISIBILITY + 0.5)  # the unacknowledged task becomes visible again
    start_worker()
    wait_for(lambda: job_status(client, access, job["id"])["status"] == "succeeded", timeout=30,
             what="export after restart")
    stored = query_db(lambda s: s.get(Job, job["id"]))
    assert stored.attempts == 2 and stored.progress == 100
    result = client.get(f"/api/v1/jobs/{job['id']}/result", headers=auth(access)).get_data(as_text=True)
    assert result.count("\n") == 13

    wait_for(lambda: [m for m in outbox(admin.email) if "job" in m["Subject"]], what="job email")
    time.sleep(1)  # any duplicate would arrive now
    assert len([m for m in outbox(admin.email) if "job" in m["Subject"]]) == 1
    keys = query_db(lambda s: s.scalars(select(SentEmail.key).where(SentEmail.key.like("job-finished:%"))).all())
    assert keys == [f"job-finished:{job['id']}"]
