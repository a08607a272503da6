"""Realtime events, write side: what a committed write emits, through both doors (PRODUCT.md "Realtime").

A post as it becomes public emits one `post.published` carrying the REST resource; a draft, an
edit of a public post and a rolled-back write emit nothing; a job's every change of status emits a
`job.progress` in order; signing out emits `session.revoked`. What is asserted is the event store
as the realtime process reads it (the events table: the embedded default this suite runs).
"""
from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from tests.servers import redis_broker, start_worker, wait_for  # noqa: F401  (fixtures)
from webapp.events.models import StoredEvent


@pytest.fixture
def events(query_db):
    """The stored events, oldest first: (type, data) pairs of one topic."""
    def read(topic):
        return query_db(lambda session: [(row.type, row.data) for row in session.scalars(
            select(StoredEvent).where(StoredEvent.topic == topic).order_by(StoredEvent.id))])
    return read


@pytest.fixture
def writer(make_user, token):
    user = make_user()
    return user, token(user)


def rest_body(client, path, access_token=None):
    response = client.get(f"/api/v1{path}", headers={"Authorization": f"Bearer {access_token}"} if access_token else {})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_creating_a_published_post_emits_it_once_in_the_rest_shape(door, client, writer, events):
    _, access = writer
    created = door.create_post(access, title="Hello", content="World", published=True)
    assert created.ok, created.data
    assert events("posts") == [("post.published", rest_body(client, f"/posts/{created.data['id']}"))]


def test_a_draft_emits_nothing_until_published_and_an_edit_of_a_public_post_nothing(door, client, writer, events):
    _, access = writer
    draft = door.create_post(access, title="Draft", content="secret")
    assert draft.ok, draft.data
    post_id = draft.data["id"]
    assert door.update_post(access, post_id, title="Still a draft").ok
    assert events("posts") == []

    assert door.update_post(access, post_id, published=True).ok
    published = rest_body(client, f"/posts/{post_id}")
    assert door.update_post(access, post_id, title="Edited in public").ok
    assert door.update_post(access, post_id, published=True).ok
    assert events("posts") == [("post.published", published)]

    assert door.update_post(access, post_id, published=False).ok  # hidden again, then public again
    assert door.update_post(access, post_id, published=True).ok
    assert [kind for kind, _ in events("posts")] == ["post.published"] * 2
    assert events("posts")[-1][1] == rest_body(client, f"/posts/{post_id}")


@pytest.fixture
def failing_insert(app):
    """A database trigger that refuses a post titled 'boom' when it is inserted."""
    statements = {
        "sqlite": (["CREATE TRIGGER refuse_boom BEFORE INSERT ON posts WHEN NEW.title = 'boom' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"],
                   ["DROP TRIGGER IF EXISTS refuse_boom"]),
        "postgresql": (["CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                        "IF NEW.title = 'boom' THEN RAISE EXCEPTION 'refused by the test'; END IF; "
                        "RETURN NEW; END $$",
                        "CREATE TRIGGER refuse_boom BEFORE INSERT ON posts FOR EACH ROW EXECUTE FUNCTION refuse_boom()"],
                       ["DROP TRIGGER IF EXISTS refuse_boom ON posts", "DROP FUNCTION IF EXISTS refuse_boom()"]),
    }
    from webapp.extensions import db

    with app.app_context():
        create, drop = statements[db.engine.dialect.name]
        with db.engine.begin() as connection:
            for statement in create:
                connection.execute(text(statement))
    yield
    with app.app_context(), db.engine.begin() as connection:
        for statement in drop:
            connection.execute(text(statement))


def test_a_write_that_fails_at_commit_emits_nothing(door, client, writer, events, failing_insert, query_db):
    _, access = writer
    refused = door.create_post(access, title="boom", content="rolled back", published=True)
    assert not refused.ok
    created = door.create_post(access, title="fine", content="committed", published=True)
    assert created.ok, created.data
    assert events("posts") == [("post.published", rest_body(client, f"/posts/{created.data['id']}"))]
    assert query_db(lambda session: session.scalar(text("SELECT count(*) FROM posts"))) == 1


@pytest.fixture
def failing_key(app):
    """A trigger that refuses every Idempotency-Key row: the request's deferred commit fails after its write."""
    from webapp.extensions import db

    with app.app_context():
        dialect = db.engine.dialect.name
        with db.engine.begin() as connection:
            if dialect == "sqlite":
                connection.execute(text("CREATE TRIGGER refuse_key BEFORE INSERT ON idempotency_keys "
                                        "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"))
            else:
                connection.execute(text("CREATE FUNCTION refuse_key() RETURNS trigger LANGUAGE plpgsql AS $$ "
                                        "BEGIN RAISE EXCEPTION 'refused by the test'; END $$"))
                connection.execute(text("CREATE TRIGGER refuse_key BEFORE INSERT ON idempotency_keys "
                                        "FOR EACH ROW EXECUTE FUNCTION refuse_key()"))
    yield
    with app.app_context(), db.engine.begin() as connection:
        if dialect == "sqlite":
            connection.execute(text("DROP TRIGGER IF EXISTS refuse_key"))
        else:
            connection.execute(text("DROP TRIGGER IF EXISTS refuse_key ON idempotency_keys"))
            connection.execute(text("DROP FUNCTION IF EXISTS refuse_key()"))


def test_an_idempotent_post_whose_key_cannot_be_recorded_emits_nothing(client, writer, events, failing_key, query_db):
    """The write is flushed, the event rendered at the real commit, then the key's INSERT fails: all roll back."""
    _, access = writer
    response = client.post("/api/v1/posts", json={"title": "Keyed", "content": "x", "published": True},
                           headers={"Authorization": f"Bearer {access}", "Idempotency-Key": "events-0001"})
    assert response.status_code >= 400, response.get_json()
    assert query_db(lambda session: session.scalar(text("SELECT count(*) FROM posts"))) == 0
    assert events("posts") == []


def test_an_idempotent_post_emits_once_and_its_replay_nothing(client, writer, events):
    _, access = writer
    headers = {"Authorization": f"Bearer {access}", "Idempotency-Key": "events-0002"}
    body = {"title": "Keyed", "content": "x", "published": True}
    first = client.post("/api/v1/posts", json=body, headers=headers)
    replay = client.post("/api/v1/posts", json=body, headers=headers)
    assert first.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    assert events("posts") == [("post.published", rest_body(client, f"/posts/{first.get_json()['id']}"))]


def test_a_job_emits_every_change_of_status_in_order(door, client, make_user, token, events):
    admin = make_user(role="admin")
    access = token(admin)
    make_user()
    job = door.request_user_export(access, "csv")
    assert job.ok, job.data
    job_id = job.data["id"]
    emitted = events(f"jobs/{job_id}")
    assert {kind for kind, _ in emitted} == {"job.progress"}
    statuses = [data["status"] for _, data in emitted]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded"
    assert statuses == sorted(statuses, key=["queued", "running", "succeeded"].index)
    progress = [data["progress"] for _, data in emitted if data["status"] == "running"]
    assert progress == sorted(progress)
    assert emitted[-1][1] == rest_body(client, f"/jobs/{job_id}", access)  # the REST resource, as it ends
    assert events("posts") == []


def test_cancelling_a_job_emits_its_cancellation(door, client, make_user, token, events, query_db):
    from webapp.jobs.models import Job

    admin = make_user(role="admin")
    access = token(admin)

    def queued_job(session):  # a job no worker has taken yet
        job = Job(kind="user-export", owner_id=admin.id, status="queued", progress=0, params={"format": "csv"})
        session.add(job)
        session.commit()
        return job.id

    job_id = query_db(queued_job)
    if door.name == "rest":
        cancelled = door._call("DELETE", f"/jobs/{job_id}", access)
    else:
        cancelled = door.query("mutation($id: Int!) { cancelJob(id: $id) { id status } }", {"id": job_id},
                               token=access, key="cancelJob")
    assert cancelled.ok, cancelled.data
    assert events(f"jobs/{job_id}") == [("job.progress", rest_body(client, f"/jobs/{job_id}", access))]
    assert events(f"jobs/{job_id}")[0][1]["status"] == "cancelled"


def session_id(access_token: str) -> str:
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"]


def test_signing_out_emits_session_revoked(door, make_user, events):
    user = make_user()
    tokens = door.login(user.email, user.password)
    assert tokens.ok, tokens.data
    access = tokens.data["access_token"]
    assert door.logout(access).ok
    assert events("sessions") == [("session.revoked", {"sid": session_id(access), "user_id": user.id})]


def test_revoking_sessions_emits_one_event_per_session(client, make_user, login, events):
    user = make_user()
    first, second = login(user)["access_token"], login(user)["access_token"]
    response = client.delete(f"/api/v1/users/me/sessions/{session_id(second)}", headers={"Authorization": f"Bearer {first}"})
    assert response.status_code == 204, response.get_json()
    assert events("sessions") == [("session.revoked", {"sid": session_id(second), "user_id": user.id})]


def test_deactivating_a_user_emits_the_revocation_of_each_of_their_sessions(door, make_user, token, login, events):
    admin, user = make_user(role="admin"), make_user()
    sids = {session_id(login(user)["access_token"]) for _ in range(2)}
    assert door.update_user(token(admin), user.id, is_active=False).ok
    emitted = events("sessions")
    assert {kind for kind, _ in emitted} == {"session.revoked"}
    assert sorted(data["sid"] for _, data in emitted) == sorted(sids)
    assert {data["user_id"] for _, data in emitted} == {user.id}


def test_a_stalled_job_queued_again_emits_its_new_state(app, make_user, events, query_db):
    from webapp.db import utcnow
    from webapp.jobs.models import Job
    from webapp.jobs.stalls import requeue_stalled

    owner = make_user()

    def stalled_job(session):  # its worker died an hour ago
        an_hour_ago = utcnow() - timedelta(hours=1)
        job = Job(kind="account-export", owner_id=owner.id, status="running", progress=40, params={},
                  attempts=1, started_at=an_hour_ago, heartbeat_at=an_hour_ago)
        session.add(job)
        session.commit()
        return job.id

    job_id = query_db(stalled_job)
    assert query_db(requeue_stalled)["requeued"] == 1
    states = [(data["status"], data["progress"]) for _, data in events(f"jobs/{job_id}")]
    assert states[0] == ("queued", 0)  # then the eager run the outbox handed over, to the end
    assert states[-1][0] in {"succeeded", "failed"}


@pytest.mark.services
def test_a_job_run_by_a_celery_worker_emits_its_progress_in_the_rest_shape(door, client, make_user, token, events,
                                                                          start_worker):
    """The worker builds the app through the same factory: its events are rendered like the web's."""
    admin = make_user(role="admin")
    access = token(admin)
    for _ in range(5):
        make_user()
    start_worker()  # JOB_BATCH_SIZE=2: several batches, so several progress updates
    job = door.request_user_export(access, "csv")
    assert job.ok, job.data
    job_id = job.data["id"]
    wait_for(lambda: events(f"jobs/{job_id}") and events(f"jobs/{job_id}")[-1][1]["status"] == "succeeded",
             what="the job's last event")
    emitted = [data for _, data in events(f"jobs/{job_id}")]
    assert [data["status"] for data in emitted][:2] == ["queued", "running"]
    progress = [data["progress"] for data in emitted if data["status"] == "running"]
    assert len(progress) > 2 and progress == sorted(progress)
    assert emitted[-1] == rest_body(client, f"/jobs/{job_id}", access)
