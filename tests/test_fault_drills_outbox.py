"""Fault drills for the task outbox and the stall detector, with real processes throughout.

Each drill runs gunicorn, a Celery worker and Celery beat (separate processes, as deployed) against
the shared PostgreSQL and a throw-away Redis broker (tests/servers.py), and stops them at the end.

E. the broker's Redis is down during sign-ups → each gets 201, and once Redis is back its
   verification email arrives exactly once (the outbox relay, run by beat);
F. the whole worker (main process and pool) SIGKILLed mid-export → its job is found silent by the
   stall detector and finished by another worker within JOB_STALL_SECONDS plus a minute, with one
   result file and one email. Redis's visibility timeout stays at its default (over an hour), so
   only the detector can have done it.

Skipped when TEST_DATABASE_URL or TEST_REDIS_URL is unset; fails when either is unreachable.
"""
from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import time
import uuid
from email import policy
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from tests.conftest import PASSWORD
from tests.servers import (  # noqa: F401  (fixtures)
    ROOT, gunicorns, kill_group, server_env, services_urls, tail, throwaway_redis, wait_for,
)

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not (os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_REDIS_URL")),
                       reason="TEST_DATABASE_URL and TEST_REDIS_URL must both be set"),
]
TIMEOUT = 5  # seconds: no request may take longer, broker or not
STALL = 5    # JOB_STALL_SECONDS for drill F


@pytest.fixture
def celery_processes(tmp_path):
    """`worker(**env)` and `beat(**env)` start ready Celery processes; each is killed (its group) at the end."""
    started: list[subprocess.Popen] = []

    def launch(kind: str, args: list[str], ready: str, env: dict) -> subprocess.Popen:
        log = tmp_path / f"{kind}-{len(started)}.log"
        home = Path(env["INSTANCE_PATH"])
        process = subprocess.Popen([sys.executable, "-m", "celery", "-A", "tasks.worker", kind, *args,
                                    "--loglevel=INFO", f"--logfile={log}"],
                                   cwd=ROOT, env=server_env(home, **env), start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        started.append(process)
        wait_for(lambda: log.exists() and ready in log.read_text(), timeout=60, what=f"{kind} start ({log})")
        process.log = log
        return process

    class Launcher:
        @staticmethod
        def worker(**env) -> subprocess.Popen:
            return launch("worker", ["-Q", "email,heavy", "--pool=prefork", "--concurrency=1",
                                     "-n", f"{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle",
                                     "--without-heartbeat"], "ready.", env)

        @staticmethod
        def beat(**env) -> subprocess.Popen:
            return launch("beat", ["-s", str(tmp_path / "beat-schedule")], "beat: Starting", env)

    yield Launcher
    for process in started:
        kill_group(process, signal.SIGTERM, timeout=10)


def messages(home: Path) -> list:
    folder = home / "outbox"
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(folder.glob("*.eml"))] \
        if folder.exists() else []


def sign_up(web, address: str) -> int:
    return requests.post(f"{web.base}/api/v1/users", json={"name": "Drill", "email": address, "password": PASSWORD},
                         timeout=TIMEOUT).status_code


# --- E: the broker down during sign-ups ------------------------------------------------------

SIGNUPS = 12


def test_e_signups_while_the_broker_is_down_each_get_their_email_once_it_is_back(
        throwaway_redis, gunicorns, celery_processes, tmp_path, query_db):
    from webapp.mail.models import SentEmail
    from webapp.outbox.models import OutboxTask

    db_url, _ = services_urls()
    home = tmp_path / "shared"
    common = dict(DATABASE_URL=db_url, CELERY_BROKER_URL=throwaway_redis.url, INSTANCE_PATH=home,
                  OUTBOX_RELAY_SECONDS=1)
    web = gunicorns(**common)
    celery_processes.worker(**common)
    celery_processes.beat(**common)
    assert sign_up(web, "before@example.com") == 201
    wait_for(lambda: messages(home), timeout=30, what="the email of a sign-up before the outage")

    throwaway_redis.kill()
    run = uuid.uuid4().hex[:8]
    addresses = [f"e-{run}-{n}@example.com" for n in range(SIGNUPS)]
    statuses = [sign_up(web, address) for address in addresses]
    assert statuses == [201] * SIGNUPS
    pending = query_db(lambda s: s.scalar(select(func.count()).select_from(OutboxTask).where(
        OutboxTask.sent_at.is_(None))))
    assert pending == SIGNUPS  # every email waits in the outbox
    assert len(messages(home)) == 1

    throwaway_redis.start()  # same port, same folder
    received = lambda: {m["To"] for m in messages(home)}  # noqa: E731
    try:
        wait_for(lambda: set(addresses) <= received(), timeout=120, interval=0.5, what="every verification email")
    except AssertionError:
        raise AssertionError(f"missing {sorted(set(addresses) - received())}\n{tail(web.log)}") from None
    time.sleep(3)  # beat's relay ran a few more times: a duplicate would be here by now
    per_address = [m["To"] for m in messages(home)]
    assert all(per_address.count(address) == 1 for address in addresses), per_address
    ledger = query_db(lambda s: s.execute(select(SentEmail.recipient, func.count()).where(
        SentEmail.recipient.like(f"e-{run}-%")).group_by(SentEmail.recipient)).all())
    assert dict(ledger) == {address: 1 for address in addresses}
    assert query_db(lambda s: s.scalar(select(func.count()).select_from(OutboxTask).where(
        OutboxTask.sent_at.is_(None)))) == 0


# --- F: the whole worker SIGKILLed mid-export ------------------------------------------------

def test_f_whole_worker_killed_mid_export_then_another_finishes_it_within_the_stall_limit(
        throwaway_redis, gunicorns, celery_processes, make_user, tmp_path, query_db):
    from webapp.jobs.models import Job
    from webapp.mail.models import SentEmail
    from webapp.outbox.models import OutboxTask

    db_url, _ = services_urls()
    home = tmp_path / "shared"
    common = dict(DATABASE_URL=db_url, CELERY_BROKER_URL=throwaway_redis.url, INSTANCE_PATH=home,
                  OUTBOX_RELAY_SECONDS=1, JOB_STALL_SECONDS=STALL, JOB_BATCH_SIZE=2, JOB_BATCH_DELAY=0.5)
    admin = make_user(role="admin")
    for _ in range(11):
        make_user()
    web = gunicorns(**common)
    celery_processes.beat(**common)
    first = celery_processes.worker(**common)
    access = requests.post(f"{web.base}/api/v1/auth/login", json={"email": admin.email, "password": PASSWORD},
                           timeout=TIMEOUT).json()["access_token"]
    headers = {"Authorization": f"Bearer {access}"}

    def job_status(job_id):
        return requests.get(f"{web.base}/api/v1/jobs/{job_id}", headers=headers, timeout=TIMEOUT).json()

    job = requests.post(f"{web.base}/api/v1/jobs/user-export", json={"format": "csv"}, headers=headers,
                        timeout=TIMEOUT).json()
    # 12 users, 2 per batch, 0.5 s a batch: kill it once it is visibly under way
    wait_for(lambda: 0 < job_status(job["id"])["progress"] < 60, timeout=30, interval=0.05, what="export under way")
    os.killpg(first.pid, signal.SIGKILL)  # the main process and its pool child
    first.wait(5)
    killed_at = time.monotonic()
    assert job_status(job["id"])["status"] == "running"

    second = celery_processes.worker(**common)
    try:
        wait_for(lambda: job_status(job["id"])["status"] == "succeeded", timeout=STALL + 60, interval=0.5,
                 what="the export finished by another worker")
    except AssertionError:
        raise AssertionError(f"{job_status(job['id'])}\n{tail(second.log)}") from None
    assert time.monotonic() - killed_at < STALL + 60
    stored = query_db(lambda s: s.get(Job, job["id"]))
    assert (stored.attempts, stored.progress) == (2, 100)
    runs = query_db(lambda s: s.scalars(select(OutboxTask.args).where(OutboxTask.task == "delta.jobs.run_job")).all())
    assert runs == [[job["id"]], [job["id"]]]  # asked for at creation, and again by the detector
    result = requests.get(f"{web.base}/api/v1/jobs/{job['id']}/result", headers=headers, timeout=TIMEOUT).text
    assert result.count("\n") == 13  # header + 12 users
    files = [p.name for p in (home / "jobs").iterdir() if p.name.lstrip(".").startswith(f"{job['id']}-")]
    assert files == [f"{job['id']}-users.csv"]

    job_emails = lambda: [m for m in messages(home) if m["To"] == admin.email and "job" in m["Subject"]]  # noqa: E731
    wait_for(job_emails, timeout=30, what="the job email")
    time.sleep(2)  # a duplicate would be here by now
    assert len(job_emails()) == 1
    keys = query_db(lambda s: s.scalars(select(SentEmail.key).where(SentEmail.key.like("job-finished:%"))).all())
    assert len(keys) == 1 and keys[0].startswith(f"job-finished:{job['id']}:")
