"""Profiles and avatars: reads with any token, writes by the user or an admin; uploads checked by content."""
from __future__ import annotations

import struct
import zlib
from io import BytesIO

import pytest
from PIL import Image

from webapp.users.models import Profile


def image_bytes(fmt="PNG", size=(300, 200), exif=False) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    out = BytesIO()
    options = {}
    if exif:
        data = Image.Exif()
        data[0x010F] = "SpyCam"          # Make
        data[0x8825] = {2: (51.0, 30.0, 0.0)}  # GPS latitude
        options["exif"] = data
    image.save(out, format=fmt, **options)
    return out.getvalue()


def huge_png(width=100_000, height=100_000) -> bytes:
    """A tiny PNG whose header declares billions of pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def upload(client, tok, user_id, data, filename="avatar.png"):
    return client.put(f"/api/v1/users/{user_id}/avatar", data={"file": (BytesIO(data), filename)},
                      headers={"Authorization": f"Bearer {tok}"}, content_type="multipart/form-data")


def test_any_signed_in_user_reads_a_profile(door, make_user, token):
    alice, bob = make_user(), make_user()
    outcome = door.get_profile(token(bob), alice.id)
    assert outcome.ok
    assert outcome.data["first_name"] == "" and outcome.data["avatar_url"] is None
    assert door.get_profile(None, alice.id).status == "unauthenticated"
    assert door.get_profile(token(bob), 999_999).status == "not_found"


def test_a_user_edits_their_own_profile(door, make_user, token, query_db):
    alice = make_user()
    outcome = door.update_profile(token(alice), alice.id, first_name=" Ada ", bio="Counts.")
    assert outcome.ok and outcome.data["first_name"] == "Ada" and outcome.data["bio"] == "Counts."
    assert query_db(lambda s: s.get(Profile, alice.id).first_name) == "Ada"
    assert door.get_user(token(alice), alice.id).data["profile"]["bio"] == "Counts."


def test_others_cannot_edit_a_profile_but_admins_can(door, make_user, token, query_db):
    alice, bob, admin = make_user(), make_user(), make_user(role="admin")
    assert door.update_profile(token(bob), alice.id, bio="pwned").status == "forbidden"
    assert door.update_profile(token(admin), alice.id, bio="moderated").ok
    assert query_db(lambda s: s.get(Profile, alice.id).bio) == "moderated"


@pytest.mark.parametrize("changes", [{"first_name": "x" * 101}, {"last_name": "a\x00b"}, {"bio": "b" * 2001}])
def test_profile_fields_are_validated(door, make_user, token, changes, query_db):
    alice = make_user()
    assert door.update_profile(token(alice), alice.id, **changes).status == "bad_input"
    assert query_db(lambda s: (s.get(Profile, alice.id).first_name, s.get(Profile, alice.id).bio)) == ("", "")


@pytest.mark.parametrize("fmt,extension", [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")])
def test_an_avatar_is_stored_reencoded_with_thumbnails(client, make_user, token, app, fmt, extension):
    alice = make_user()
    response = upload(client, token(alice), alice.id, image_bytes(fmt, exif=fmt == "JPEG"), filename="../../evil.exe")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["avatar_url"].startswith("/media/avatars/") and body["avatar_url"].endswith(f".{extension}")
    assert "evil" not in body["avatar_url"]
    assert sorted(t["size"] for t in body["avatar_thumbnails"]) == [64, 256]
    original = client.get(body["avatar_url"])
    assert original.status_code == 200
    stored = Image.open(BytesIO(original.data))
    assert stored.format == fmt and stored.size == (300, 200)
    assert not stored.getexif() and "exif" not in stored.info
    for thumb in body["avatar_thumbnails"]:
        assert Image.open(BytesIO(client.get(thumb["url"]).data)).size == (thumb["size"], thumb["size"])
    # the profile everyone reads now points to the files
    profile = client.get(f"/api/v1/users/{alice.id}/profile", headers={"Authorization": f"Bearer {token(alice)}"})
    assert profile.get_json()["avatar_url"] == body["avatar_url"]


def test_a_new_avatar_replaces_the_old_files(client, make_user, token, app):
    alice = make_user()
    tok = token(alice)
    first = upload(client, tok, alice.id, image_bytes()).get_json()
    second = upload(client, tok, alice.id, image_bytes("JPEG")).get_json()
    assert first["avatar_url"] != second["avatar_url"]
    assert client.get(first["avatar_url"]).status_code == 404
    assert client.get(second["avatar_url"]).status_code == 200


def test_a_fake_image_is_415(client, make_user, token, query_db):
    alice = make_user()
    response = upload(client, token(alice), alice.id, b"<?php echo 'hi'; ?>" * 10, filename="avatar.png")
    assert response.status_code == 415
    body = response.get_json()
    assert body["code"] == 415 and body["status"] == "Unsupported Media Type" and "file" in body["errors"]
    gif = BytesIO()
    Image.new("RGB", (10, 10)).save(gif, format="GIF")
    assert upload(client, token(alice), alice.id, gif.getvalue()).status_code == 415
    assert query_db(lambda s: s.get(Profile, alice.id).avatar_key) is None


def test_an_oversized_file_is_413_with_the_error_shape(client, make_user, token, app):
    alice = make_user()
    tok = token(alice)
    limit = app.config["MAX_AVATAR_BYTES"]
    response = upload(client, tok, alice.id, image_bytes() + b"\x00" * (limit + 1 - len(image_bytes())))
    assert response.status_code == 413 and response.get_json()["code"] == 413
    # a body beyond the whole-request limit is cut off by werkzeug, still in our envelope
    response = upload(client, tok, alice.id, b"\x00" * (app.config["MAX_CONTENT_LENGTH"] + 10))
    assert response.status_code == 413
    body = response.get_json()
    assert body["code"] == 413 and body["status"] == "Request Entity Too Large" and body["message"]


@pytest.mark.parametrize("width,height", [(6_000, 6_000), (100_000, 100_000)])
def test_an_image_declaring_huge_dimensions_is_refused_before_decoding(client, make_user, token, width, height):
    alice = make_user()
    response = upload(client, token(alice), alice.id, huge_png(width, height))
    assert response.status_code == 422
    assert "exceeds" in response.get_json()["errors"]["file"][0]


def test_a_corrupt_image_is_refused_cleanly(client, make_user, token, query_db):
    alice = make_user()
    data = image_bytes("JPEG", size=(400, 400))
    response = upload(client, token(alice), alice.id, data[: len(data) // 3])
    assert response.status_code == 422 and response.get_json()["code"] == 422
    assert query_db(lambda s: s.get(Profile, alice.id).avatar_key) is None


def test_the_thumbnail_task_fails_cleanly_on_a_corrupt_original(app, make_user):
    from webapp.extensions import db
    from webapp.media.images import ImageError
    from webapp.media.storage import get_storage
    from webapp.profiles.avatars import make_thumbnails

    alice = make_user()
    with app.app_context():
        get_storage().save("avatars/corrupt.png", b"\x89PNG\r\n\x1a\n garbage")
        profile = db.session.get(Profile, alice.id)
        profile.avatar_key = "avatars/corrupt.png"
        db.session.commit()
        with pytest.raises(ImageError):
            make_thumbnails(alice.id, "avatars/corrupt.png")
        db.session.rollback()
        assert db.session.get(Profile, alice.id).avatar_thumbnails == ""
        # superseded avatars are skipped: the task is safe to retry or run late
        make_thumbnails(alice.id, "avatars/older.png")
        db.session.remove()


def test_only_the_user_or_an_admin_uploads(client, make_user, token):
    alice, bob, admin = make_user(), make_user(), make_user(role="admin")
    assert upload(client, token(bob), alice.id, image_bytes()).status_code == 403
    assert upload(client, token(admin), alice.id, image_bytes()).status_code == 200
    response = client.put(f"/api/v1/users/{alice.id}/avatar", headers={"Authorization": f"Bearer {token(alice)}"},
                          data={}, content_type="multipart/form-data")
    assert response.status_code == 422 and "file" in response.get_json()["errors"]


def test_graphql_profile_shows_avatar_urls(client, make_user, token):
    from tests.doors import GraphQLDoor

    alice = make_user()
    upload(client, token(alice), alice.id, image_bytes())
    profile = GraphQLDoor(client).get_profile(token(alice), alice.id).data
    assert profile["avatar_url"].startswith("/media/avatars/")
    assert sorted(t["size"] for t in profile["avatar_thumbnails"]) == [64, 256]


def test_avatar_upload_refuses_extra_form_fields(client, make_user, token):
    import io

    from PIL import Image

    user = make_user()
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "PNG")
    response = client.put(f"/api/v1/users/{user.id}/avatar", headers={"Authorization": f"Bearer {token(user)}"},
                          data={"file": (io.BytesIO(buffer.getvalue()), "a.png"), "extra": "x"},
                          content_type="multipart/form-data")
    assert response.status_code == 422 and "extra" in response.get_json()["errors"]
