"""Read replicas (issue 20) against a real PostgreSQL streaming replica that this module starts.

A throw-away primary (initdb, pg_stat_statements loaded) and a hot standby made from it with
`pg_basebackup -R` run on free ports for the whole module; the app under test reads from the
standby. What a client can see proves the routing: with replay paused (`pg_wal_replay_pause()`)
a row written afterwards exists only on the primary, so a read that finds it came from the
primary and a read that misses it came from the replica — besides the replica's own
pg_stat_statements, pg_stat_activity and /metrics. Every rule runs through both doors.

The last tests run in SQLite mode too: there are no replicas there, and asking for one is refused.
"""
from __future__ import annotations

import re
import uuid
from contextlib import contextmanager

import psycopg
import pytest
from redis import Redis
from sqlalchemy import func, select, update

from conf.settings import ConfigError, TestingConfig as Settings
from tests.conftest import PASSWORD
from tests.doors import DOORS
from tests.servers import PostgresCluster, services_urls, start_replica, wait_for
from webapp import create_app
from webapp.cli import upgrade
from webapp.extensions import db

services = pytest.mark.services
POSTS = "%from%posts%"


# --- the clusters and the app ---------------------------------------------------------------------

def sql(cluster, query, params=()):
    with psycopg.connect(f"host=127.0.0.1 port={cluster.port} user=postgres dbname=postgres",
                         autocommit=True) as connection:
        cursor = connection.execute(query, params)
        return cursor.fetchone() if cursor.description else None


@pytest.fixture(scope="module")
def clusters():
    services_urls()
    primary = PostgresCluster().init()
    with open(primary.data / "postgresql.conf", "a") as conf:
        conf.write("\nshared_preload_libraries = 'pg_stat_statements'\n")
    primary.start()
    replica = None
    try:
        sql(primary, "CREATE EXTENSION pg_stat_statements")
        replica = start_replica(primary)
        yield primary, replica
    finally:
        if replica is not None:
            replica.destroy()
        primary.destroy()


def make_app(primary, replica, instance, **settings):
    _, redis_url = services_urls()
    config = Settings().override(
        INSTANCE_PATH=instance, MEDIA_ROOT=instance / "media", DATABASE_URL=primary.url, REDIS_URL=redis_url,
        DATABASE_REPLICA_URLS=[replica.url], **{"REPLICA_POLL_SECONDS": 0.1, **settings})
    return create_app(config)


@pytest.fixture(scope="module")
def replica_app(clusters, tmp_path_factory):
    primary, replica = clusters
    _, redis_url = services_urls()
    Redis.from_url(redis_url).flushdb()
    app = make_app(primary, replica, tmp_path_factory.mktemp("replicas"))
    with app.app_context():
        upgrade()
    yield app
    stop(app)


def stop(app):
    router = app.extensions["database_router"]
    router.monitor.stop()
    for engine in (router.primary, *(replica.engine for replica in router.replicas)):
        engine.dispose()


@pytest.fixture
def client(replica_app):
    """The doors (tests/doors.py) talk to the app that has the replica."""
    return replica_app.test_client()


@contextmanager
def paused(replica):
    """Replay paused on the replica (resumed at the end, whatever happens)."""
    sql(replica, "SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        sql(replica, "SELECT pg_wal_replay_resume()")


# --- helpers: users, what the replica reports, what the servers ran -------------------------------------

def member(app, client, name="reader"):
    """A verified user with an access token (signed in before any replay is paused)."""
    from webapp.users.services import create_user

    email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    with app.app_context():
        create_user(db.session, name=name, email=email, password=PASSWORD, verified=True)
        db.session.remove()
    answer = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["access_token"]


def replica_view(client) -> dict:
    answer = client.get("/ready")
    assert answer.status_code == 200, answer.get_json()
    (view,) = answer.get_json()["replicas"]
    return view


def lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def caught_up(client, primary):
    """Wait until the app sees the replica up and replayed to where the primary is now."""
    target = sql(primary, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")[0]

    def there():
        view = replica_view(client)
        return view["state"] == "up" and view["replay_lsn"] and lsn(view["replay_lsn"]) >= target

    wait_for(there, timeout=20, what="the replica to replay the primary's writes")


def reads(client, target: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    found = re.search(rf'^delta_db_reads_total{{target="{target}"}} ([0-9.e+]+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def post_selects(cluster) -> int:
    """SELECTs that read the posts table on this server (pg_stat_statements)."""
    return sql(cluster, "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements "
                        "WHERE query ILIKE 'select%%' AND query ILIKE %s", (POSTS,))[0]


def post_writes(cluster) -> int:
    return sql(cluster, "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements "
                        "WHERE query ILIKE 'insert into posts%%' OR query ILIKE 'update posts%%'")[0]


def new_post(door, token, title="First title"):
    outcome = door.create_post(token, title=title, content="Some words.", published=True)
    assert outcome.ok, outcome
    return outcome.data["id"]


# --- the rules, through both doors --------------------------------------------------------------------

@services
def test_reads_are_served_by_the_replica_and_writes_by_the_primary(door, client, clusters):
    primary, replica = clusters
    writer, reader = member(client.application, client, "writer"), member(client.application, client)
    before = {"writes": (post_writes(primary), post_writes(replica)),
              "reads": (post_selects(primary), post_selects(replica))}
    post_id = new_post(door, writer)
    assert post_writes(primary) == before["writes"][0] + 1  # the INSERT ran on the primary
    caught_up(client, primary)
    counted = reads(client, "replica-1")

    outcome = door.get_post(reader, post_id)

    assert outcome.ok and outcome.data["title"] == "First title"
    assert post_selects(replica) > before["reads"][1]
    assert reads(client, "replica-1") == counted + 1
    names = {row for row in sql(replica, "SELECT array_agg(DISTINCT application_name) FROM pg_stat_activity")[0]}
    assert "delta-replica-1" in names  # the app's own pool, named per target


@services
def test_the_writer_reads_its_write_while_the_replica_is_paused(door, client, clusters):
    primary, replica = clusters
    writer, reader = member(client.application, client, "writer"), member(client.application, client)
    caught_up(client, primary)
    with paused(replica):
        selects = post_selects(replica)
        post_id = new_post(door, writer)  # after the pause: only the primary has it
        changed = door.update_post(writer, post_id, title="Second title")  # read first: on the primary too
        assert changed.ok, changed

        assert door.get_post(reader, post_id).status == "not_found"  # another user: the paused replica
        assert post_selects(replica) > selects
        mine = door.get_post(writer, post_id)
        assert mine.ok and mine.data["title"] == "Second title"  # the writer: the primary


@services
def test_the_cache_keeps_nothing_a_lagging_replica_read(door, client, clusters):
    primary, replica = clusters
    writer, reader = member(client.application, client, "writer"), member(client.application, client)
    post_id = new_post(door, writer)
    caught_up(client, primary)
    with paused(replica):
        assert door.update_post(writer, post_id, title="Second title").ok
        created = new_post(door, writer, title="Created while paused")
        # The reader is served by the paused replica: the old title, and a 404 for the new post.
        assert door.get_post(reader, post_id).data["title"] == "First title"
        assert door.get_post(reader, created).status == "not_found"
    caught_up(client, primary)
    # Had either answer been cached under the new version, it would still be served now.
    assert door.get_post(reader, post_id).data["title"] == "Second title"
    assert door.get_post(reader, created).ok


@services
def test_a_replica_that_has_replayed_the_last_invalidation_fills_the_cache(client, clusters):
    """The rule keeps the cache useful: REST's post reads are cached (GraphQL's `post` is not)."""
    primary, replica = clusters
    writer, reader = member(client.application, client, "writer"), member(client.application, client)
    rest = DOORS["rest"](client)
    post_id = new_post(rest, writer)
    caught_up(client, primary)
    selects = post_selects(replica)
    assert rest.get_post(reader, post_id).ok  # a miss: read on the replica, stored
    assert post_selects(replica) == selects + 1
    assert rest.get_post(reader, post_id).ok  # a hit: no SELECT anywhere
    assert post_selects(replica) == selects + 1


@services
def test_a_stopped_replica_is_skipped_without_error_and_used_again_once_back(door, client, clusters):
    primary, replica = clusters
    writer, reader = member(client.application, client, "writer"), member(client.application, client)
    post_id = new_post(door, writer)
    caught_up(client, primary)
    # An app whose monitor probed once and then looks away: only the request itself can find out.
    blind = make_app(primary, replica, client.application.config["INSTANCE_PATH"], REPLICA_POLL_SECONDS=3600)
    blind_client = blind.test_client()
    blind_door = DOORS[door.name](blind_client)
    try:
        assert replica_view(blind_client)["state"] == "up"
        on_replica, on_primary = reads(blind_client, "replica-1"), reads(blind_client, "primary")
        assert blind_door.get_post(reader, post_id).ok  # its pool now holds a replica connection
        assert reads(blind_client, "replica-1") == on_replica + 1
        replica.stop("fast")
        try:
            assert door.update_post(writer, post_id, title="Second title").ok  # the next read is a miss
            outcome = blind_door.get_post(reader, post_id)  # the replica refuses: the primary, no error
            assert outcome.ok and outcome.data["title"] == "Second title", outcome
            assert reads(blind_client, "primary") == on_primary + 1
            assert replica_view(blind_client)["state"] == "down"
            wait_for(lambda: replica_view(client)["state"] == "down", timeout=10, what="/ready to say down")
            assert client.get("/ready").get_json()["status"] == "ok"
            metrics = client.get("/metrics").get_data(as_text=True)
            assert 'delta_db_replica_up{replica="replica-1"} 0.0' in metrics
            assert door.update_post(writer, post_id, title="Third title").ok
            assert door.get_post(reader, post_id).data["title"] == "Third title"
        finally:
            replica.start()
    finally:
        stop(blind)
    caught_up(client, primary)
    counted = reads(client, "replica-1")
    assert door.update_post(writer, post_id, title="Back again").ok
    caught_up(client, primary)
    assert door.get_post(reader, post_id).data["title"] == "Back again"
    assert reads(client, "replica-1") == counted + 1


@services
def test_a_replica_lagging_past_the_maximum_is_skipped(door, client, clusters):
    """The same replica, paused: within the module app's 10 s it serves; past a 1 s maximum it is skipped."""
    primary, replica = clusters
    strict = make_app(primary, replica, client.application.config["INSTANCE_PATH"], REPLICA_MAX_LAG_SECONDS=1.0)
    strict_client = strict.test_client()
    strict_door = DOORS[door.name](strict_client)  # same secrets: the tokens work on both apps
    try:
        writer, reader = member(client.application, client, "writer"), member(client.application, client)
        caught_up(client, primary)
        caught_up(strict_client, primary)
        with paused(replica):
            post_id = new_post(door, writer)  # the primary moves on; the paused replica does not
            wait_for(lambda: replica_view(strict_client)["state"] == "lagging", timeout=10,
                     what="the replica to lag past 1 s")
            assert replica_view(strict_client)["lag_seconds"] > 1
            metrics = strict_client.get("/metrics").get_data(as_text=True)
            assert 'delta_db_replica_up{replica="replica-1"} 0.0' in metrics
            counted = reads(strict_client, "primary")
            assert door.get_post(reader, post_id).status == "not_found"  # 10 s allowed: the replica
            assert strict_door.get_post(reader, post_id).ok  # 1 s allowed: skipped, the primary answers
            assert reads(strict_client, "primary") == counted + 1
    finally:
        stop(strict)


# --- the session's routing rule (service level: a read request that turns out to write) ---------------

@services
def test_a_read_request_that_writes_moves_to_the_primary(replica_app, client, clusters):
    """Each GET below comes from its own address, so no earlier write of that address steers it."""
    from webapp.compat.sqlalchemy import locks_rows
    from webapp.users.models import User
    from webapp.users.services import create_user

    primary, replica = clusters
    tag = uuid.uuid4().hex[:8]
    mine = select(func.count()).select_from(User).where(User.email.like(f"%{tag}@example.com"))
    caught_up(client, primary)

    def get_request(address):
        return replica_app.test_request_context("/api/v1/users", method="GET",
                                                environ_base={"REMOTE_ADDR": address})

    with paused(replica):
        with replica_app.app_context():  # a script's write: only the primary has it
            create_user(db.session, name="early", email=f"early-{tag}@example.com", password=PASSWORD)
        with get_request("10.0.0.1"):
            assert db.session.scalar(mine) == 0  # the paused replica: the row is not there
            create_user(db.session, name="late", email=f"late-{tag}@example.com", password=PASSWORD)  # flushes
            assert db.session.scalar(mine) == 2  # the primary from then on: both rows
        with get_request("10.0.0.2"):
            assert locks_rows(select(User).with_for_update()) and not locks_rows(select(User))
            locked = db.session.scalars(select(User.id).where(User.email.like(f"%{tag}@example.com"))
                                        .with_for_update())
            assert len(locked.all()) == 2  # the primary (a standby refuses FOR UPDATE)
        with get_request("10.0.0.3"):
            db.session.execute(update(User).where(User.email == f"late-{tag}@example.com").values(name="later"))
            db.session.commit()  # a standby would refuse the UPDATE
    assert sql(primary, "SELECT name FROM users WHERE email = %s", (f"late-{tag}@example.com",))[0] == "later"


# --- without replicas (SQLite mode too) ------------------------------------------------------------------

def test_replicas_need_a_postgresql_primary(tmp_path):
    config = Settings().override(INSTANCE_PATH=tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'r.db'}",
                                      DATABASE_REPLICA_URLS=["postgresql+psycopg://u:secret@replica/db"])
    with pytest.raises(ConfigError, match="needs a PostgreSQL primary") as refused:
        create_app(config)
    assert "secret" not in str(refused.value)


def test_without_replicas_ready_lists_none_and_reads_use_the_primary(app):
    answer = app.test_client().get("/ready")
    assert answer.get_json()["replicas"] == []
    with app.test_request_context("/api/v1/posts", method="GET"):
        # the primary's pool (on PostgreSQL through its autocommit engine: a read needs no BEGIN)
        assert db.session.get_bind(clause=select(1)).pool is db.engine.pool


def test_lag_is_the_time_since_the_primary_passed_the_replay_position_never_the_idle_time():
    """An idle replica that has everything is not lagging, however old its last transaction is."""
    from webapp.replicas.monitor import Monitor

    monitor = Monitor("postgresql+psycopg://u@h/db", [], max_lag=10, poll=1, connect_timeout=2)
    monitor.samples.extend([(0.0, 100), (1.0, 100), (2.0, 150), (3.0, 180)])
    assert monitor.lag(180, now=3600.0) == 0.0  # an hour of silence, everything replayed
    assert monitor.lag(100, now=5.0) == 3.0  # the primary wrote past 100 at t=2
    assert monitor.lag(90, now=5.0) == 5.0  # behind every sample kept: at least since the oldest
