"""Fast avatar replacement leaves exactly the current original and its thumbnails on disk, and no
thumbnail task fails: eagerly (the embedded default), and with a real Celery worker behind Redis."""
from __future__ import annotations

import logging
import re
import shutil
import threading
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from tests.doors import bearer
from tests.servers import redis_broker, start_worker, wait_for  # noqa: F401  (fixtures)
from webapp.users.models import Profile

UPLOADS = 24


def image_bytes(n: int, size=(320, 240)) -> bytes:
    out = BytesIO()
    Image.radial_gradient("L").resize(size).convert("RGB").rotate(n).save(out, format="PNG")
    return out.getvalue()


def upload(client, access, user_id, n, size=(320, 240)):
    return client.put(f"/api/v1/users/{user_id}/avatar", data={"file": (BytesIO(image_bytes(n, size)), "a.png")},
                      headers=bearer(access), content_type="multipart/form-data")


def files_of(app, user_id) -> set[str]:
    folder = Path(app.config["MEDIA_ROOT"]) / "avatars" / str(user_id)
    return {path.name for path in folder.iterdir() if path.is_file()} if folder.exists() else set()


@pytest.fixture
def alice(app, make_user):
    """A user whose avatar folder starts empty (PostgreSQL reuses ids between tests; the media stay)."""
    user = make_user()
    shutil.rmtree(Path(app.config["MEDIA_ROOT"]) / "avatars" / str(user.id), ignore_errors=True)
    return user


def expected_files(key: str) -> set[str]:
    stem, _, extension = key.rpartition("/")[2].rpartition(".")
    return {f"{stem}.{extension}", f"{stem}_64.{extension}", f"{stem}_256.{extension}"}


def upload_concurrently(app, access, user_id, clients=4, size=(320, 240)) -> list:
    """UPLOADS replacements from several clients at once; the error bodies of any that failed."""
    failures = []

    def uploader(first: int):
        own = app.test_client()  # one client per thread, as separate browsers would be
        for n in range(first, UPLOADS, clients):
            response = upload(own, access, user_id, n, size)
            if response.status_code != 200:
                failures.append(response.get_json())

    threads = [threading.Thread(target=uploader, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_rapid_replacements_leave_only_the_current_avatar(app, client, alice, token, query_db, caplog):
    access = token(alice)
    with caplog.at_level(logging.INFO, logger="tasks"):
        assert upload_concurrently(app, access, alice.id) == []
    key, made = query_db(lambda s: (lambda p: (p.avatar_key, p.avatar_thumbnails))(s.get(Profile, alice.id)))
    assert made == "64,256"
    assert files_of(app, alice.id) == expected_files(key)
    runs = [r.fields for r in caplog.records
            if r.name == "tasks" and getattr(r, "fields", {}).get("task") == "delta.jobs.make_thumbnails"]
    assert len(runs) == UPLOADS and {run["state"] for run in runs} == {"SUCCESS"}
    body = client.get(f"/api/v1/users/{alice.id}/profile", headers=bearer(access)).get_json()
    for thumb in body["avatar_thumbnails"]:
        assert client.get(thumb["url"]).status_code == 200


def test_a_late_thumbnail_task_for_a_replaced_avatar_leaves_nothing(app, client, alice, token, query_db):
    """A task that runs after its avatar was replaced (a slow or retried worker): no error, no files."""
    from webapp.media.storage import get_storage
    from webapp.profiles.avatars import make_thumbnails, thumbnail_key

    access = token(alice)
    first = upload(client, access, alice.id, 1).get_json()["avatar_url"]
    assert upload(client, access, alice.id, 2).status_code == 200
    old_key = first.removeprefix(app.config["MEDIA_URL"])
    with app.app_context():
        storage = get_storage()
        storage.save(thumbnail_key(old_key, 64), b"written by a task overtaken mid-way")
        make_thumbnails(alice.id, old_key)  # superseded: cleans up instead of raising
    current = query_db(lambda s: s.get(Profile, alice.id).avatar_key)
    assert files_of(app, alice.id) == expected_files(current)


@pytest.mark.services
def test_rapid_replacements_with_a_real_worker(app, client, alice, token, query_db, start_worker, tmp_path):
    """The worker lags behind the uploads, so its tasks meet replaced and deleted originals."""
    access = token(alice)
    start_worker()
    # Large enough that a thumbnail takes a while (~0.15 s): replacements land while it is made.
    assert upload_concurrently(app, access, alice.id, clients=2, size=(1600, 1200)) == []
    key = query_db(lambda s: s.get(Profile, alice.id).avatar_key)
    logs = list(tmp_path.glob("worker-*.log"))

    def finished():
        text = "".join(log.read_text() for log in logs)
        return len(re.findall(r"delta\.jobs\.make_thumbnails\[[^\]]+\] (?:succeeded|raised|retry)", text)) >= UPLOADS

    wait_for(finished, timeout=120, what=f"{UPLOADS} thumbnail tasks")
    text = "".join(log.read_text() for log in logs)
    assert "make_thumbnails" in text and "raised" not in text and "FileNotFoundError" not in text, text[-3000:]
    wait_for(lambda: query_db(lambda s: s.get(Profile, alice.id).avatar_thumbnails) == "64,256",
             what="the current avatar's thumbnails")
    assert files_of(app, alice.id) == expected_files(key)
