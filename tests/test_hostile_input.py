"""No input makes a 500 (PRODUCT.md, "Under faults and hostile input").

Each hostile input is a 4xx in the error envelope `{code, status, message, errors?}`: 400 for
what cannot be read (JSON the strict parser refuses, a URL that is not UTF-8, a broken chunked
body), 413 for too large, 422 for a readable value out of range (named under `errors`), 404 for
an id that names nothing. Every such request still logs its one JSON line, with the id it echoed
in X-Request-ID. The live test at the end sends the same through gunicorn, where some requests
never reach the app (gunicorn answers those itself, see deploy/gunicorn.conf.py).
"""
from __future__ import annotations

import io
import logging
import re
import socket

import pytest
from werkzeug.http import HTTP_STATUS_CODES

from tests.conftest import PASSWORD
from tests.servers import gunicorns, migrate  # noqa: F401  (fixture)

DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE_INT = b"9" * 5000
BODIES = {  # what is sent in place of one string field, and why it is refused
    "lone surrogate": (b'"\\ud800"', "surrogate"),
    "low surrogate": (b'"ok \\udfff"', "surrogate"),
    "5,000-digit integer": (HUGE_INT, "digits"),
    "NaN": (b"NaN", "NaN"),
    "Infinity": (b"-Infinity", "Infinity"),
    "1e999": (b"1e999", "range"),
}


@pytest.fixture
def request_log(caplog):
    """The request log lines (their fields) of the requests made so far in this test."""
    caplog.set_level(logging.INFO, logger="webapp.request")
    return lambda: [record.fields for record in caplog.records if record.name == "webapp.request"]


def refused(response, status: int, request_log) -> dict:
    """Assert the envelope with `status`, and that this request logged exactly one line."""
    body = response.get_json()
    assert response.status_code == status, body
    assert body["code"] == status and body["status"] == HTTP_STATUS_CODES[status] and body["message"]
    lines = [line for line in request_log() if line["request_id"] == response.headers["X-Request-ID"]]
    assert len(lines) == 1 and lines[0]["status"] == status
    return body


@pytest.fixture
def alice(make_user, token):
    user = make_user(name="Alice")
    user.headers = {"Authorization": f"Bearer {token(user)}"}
    return user


@pytest.fixture
def admin(make_user, token):
    user = make_user(name="Admin", role="admin")
    user.headers = {"Authorization": f"Bearer {token(user)}"}
    return user


def _json_routes(alice):
    """(method, path, headers, body template with {} where the hostile value goes)."""
    return [
        ("POST", "/api/v1/users", {}, b'{"name": {}, "email": "new@example.com", "password": "a long passphrase 1"}'),
        ("POST", "/api/v1/auth/login", {}, b'{"email": {}, "password": "whatever it is"}'),
        ("POST", "/api/v1/posts", alice.headers, b'{"title": {}, "content": "text"}'),
        ("PATCH", f"/api/v1/users/{alice.id}/profile", alice.headers, b'{"bio": {}}'),
        ("PATCH", f"/api/v1/users/{alice.id}", alice.headers, b'{"name": {}}'),
    ]


@pytest.mark.parametrize("case", sorted(BODIES))
def test_json_the_strict_parser_refuses_is_400_on_every_json_route(client, alice, request_log, query_db, case):
    from webapp.posts.models import Post
    from webapp.users.models import User

    value, reason = BODIES[case]
    for method, path, headers, template in _json_routes(alice):
        response = client.open(path, method=method, data=template.replace(b"{}", value),
                               headers={**headers, "Content-Type": "application/json"})
        body = refused(response, 400, request_log)
        assert reason.lower() in body["message"].lower() and body["errors"]["json"] == [body["message"]]
    assert query_db(lambda s: s.query(User).count()) == 1  # no sign-up went through
    assert query_db(lambda s: s.query(Post).count()) == 0
    assert client.get(f"/api/v1/users/{alice.id}/profile", headers=alice.headers).get_json()["bio"] == ""


@pytest.mark.parametrize("body, reason", [
    (DEEP, "nested deeper than 64"),
    (b"{" + b'"a":{' * 100 + b"}" * 101, "nested deeper than 64"),
    (b'{"title": "\xff\xfe", "content": "x"}', "utf-8"),
    (b'{"title": "t", "content": "c"} trailing', "invalid json"),
])
def test_deep_nesting_and_broken_bytes_are_400(client, alice, request_log, body, reason):
    for method, path, headers, _ in _json_routes(alice):
        response = client.open(path, method=method, data=body, headers={**headers, "Content-Type": "application/json"})
        assert reason in refused(response, 400, request_log)["message"].lower()


def test_a_strict_body_still_works(client, alice):
    response = client.post("/api/v1/posts", headers=alice.headers,
                           json={"title": "Fine \u00e9\U0001F600", "content": "x" * 100})
    assert response.status_code == 201 and response.get_json()["title"] == "Fine \u00e9\U0001F600"


@pytest.mark.parametrize("query, field", [
    ("page=" + "9" * 5000, "page"),
    ("page_size=" + "9" * 5000, "page_size"),
    ("author_id=" + "9" * 5000, "author_id"),
    ("author_id=99999999999999999999", "author_id"),
    ("author_id=-9223372036854775809", "author_id"),
    ("page=99999999999999999999", "page"),
])
def test_numbers_out_of_range_in_the_query_are_422_naming_the_field(client, alice, request_log, query, field):
    for path in ("/api/v1/posts", f"/api/v1/users/{alice.id}/posts", "/api/v1/users", "/api/v1/jobs"):
        response = client.get(f"{path}?{query}", headers=alice.headers)
        if field == "author_id" and path != "/api/v1/posts":
            assert response.status_code == 200  # not an argument there: ignored
            continue
        assert field in refused(response, 422, request_log)["errors"]


@pytest.mark.parametrize("path", [
    "/api/v1/users/99999999999999999999999",
    "/api/v1/users/" + "9" * 5000,
    "/api/v1/posts/9223372036854775808",
    "/api/v1/posts/99999999999999999999/",
    "/api/v1/users/99999999999999999999/profile",
    "/api/v1/jobs/99999999999999999999/result",
])
def test_ids_past_64_bits_in_the_path_are_404(client, alice, request_log, path):
    refused(client.get(path, headers=alice.headers), 404, request_log)


@pytest.mark.parametrize("url", ["/api/v1/posts?q=%ff", "/api/v1/posts?q=%ED%A0%80", "/api/v1/posts?q=%zz",
                                 "/api/v1/posts?q=50%", "/health?%C3"])
def test_a_query_string_that_is_not_utf8_is_400(client, alice, request_log, url):
    body = refused(client.get(url, headers=alice.headers), 400, request_log)
    assert body["errors"] == {"url": [body["message"]]}


@pytest.mark.parametrize("raw_path", ["/api/v1/posts/\xed\xa0\x80", "/api/v1/\xff\xfe", "/media/\xff.png"])
def test_a_path_that_is_not_utf8_is_400(client, request_log, raw_path):
    # What a server hands the app for `%ED%A0%80` (a surrogate) or `%ff` in the path: the raw bytes.
    response = client.get("/", environ_overrides={"PATH_INFO": raw_path})
    refused(response, 400, request_log)


def test_well_formed_utf8_in_the_url_is_fine(client, alice):
    assert client.get("/api/v1/posts?q=caf%C3%A9+%F0%9F%98%80", headers=alice.headers).status_code == 200


MULTIPART = "multipart/form-data; boundary=XyZ"
BROKEN_MULTIPART = {
    "no boundary": (b"--XyZ\r\n", "multipart/form-data"),
    "truncated": (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nabc', MULTIPART),
    "garbage": (b"\x00\xff" * 100, MULTIPART),
    "undecodable disposition": (b'--XyZ\r\nContent-Disposition: \xff\xfe; name="file"\r\n\r\nabc\r\n--XyZ--\r\n',
                                MULTIPART),
}


@pytest.mark.parametrize("case", sorted(BROKEN_MULTIPART))
def test_a_malformed_multipart_body_is_422_for_the_missing_file(client, alice, admin, request_log, case):
    body, content_type = BROKEN_MULTIPART[case]
    for method, path, user in (("PUT", f"/api/v1/users/{alice.id}/avatar", alice),
                               ("POST", "/api/v1/jobs/user-import", admin)):
        response = client.open(path, method=method, data=body, headers={**user.headers, "Content-Type": content_type})
        assert "file" in refused(response, 422, request_log)["errors"]


def test_a_multipart_body_of_thousands_of_parts_is_413(client, alice, request_log):
    body = b"".join(b'--XyZ\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nx\r\n' % i for i in range(2000))
    response = client.put(f"/api/v1/users/{alice.id}/avatar", data=body + b"--XyZ--\r\n",
                          headers={**alice.headers, "Content-Type": MULTIPART})
    refused(response, 413, request_log)


def _chunked(client, method, path, stream, headers, content_type="application/json"):
    """A body without Content-Length, as gunicorn hands over a chunked one (wsgi.input_terminated)."""
    return client.open(path, method=method, input_stream=stream,
                       headers={**headers, "Content-Type": content_type, "Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})


def test_bodies_past_max_content_length_are_413_with_or_without_content_length(app, client, alice, request_log):
    limit = app.config["MAX_CONTENT_LENGTH"]
    post = b'{"title": "t", "content": "' + b"x" * limit + b'"}'
    refused(client.post("/api/v1/posts", data=post, headers={**alice.headers, "Content-Type": "application/json"}),
            413, request_log)
    refused(_chunked(client, "POST", "/api/v1/posts", io.BytesIO(post), alice.headers), 413, request_log)
    upload = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n' + \
        b"\x89PNG" + b"\0" * limit + b"\r\n--XyZ--\r\n"
    refused(_chunked(client, "PUT", f"/api/v1/users/{alice.id}/avatar", io.BytesIO(upload), alice.headers,
                     MULTIPART), 413, request_log)


def test_a_chunked_body_within_the_limit_is_read_whole(client, alice):
    body = b'{"title": "chunked", "content": "' + b"y" * 9000 + b'"}'
    response = _chunked(client, "POST", "/api/v1/posts", io.BytesIO(body), alice.headers)
    assert response.status_code == 201 and len(response.get_json()["content"]) == 9000


class _BrokenStream(io.BytesIO):
    """A chunked body the server cannot decode: reading it fails (gunicorn's InvalidChunkSize)."""

    def read(self, size=-1):
        raise ValueError("Invalid chunk size")


def test_a_chunked_body_that_cannot_be_read_is_400(client, alice, request_log):
    response = _chunked(client, "POST", "/api/v1/posts", _BrokenStream(), alice.headers)
    assert "could not be read" in refused(response, 400, request_log)["message"]


def test_options_is_204_with_allow_and_no_html(client, request_log):
    response = client.options("/api/v1/users")
    assert response.status_code == 204 and response.data == b""
    assert "Content-Type" not in response.headers
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST", "OPTIONS"}
    assert [line["status"] for line in request_log() if line["method"] == "OPTIONS"] == [204]


@pytest.mark.parametrize("method, path, status", [
    ("DELETE", "/api/v1/users", 405), ("BREW", "/api/v1/posts", 405), ("GET", "/api/v1/nope", 404),
    ("GET", "/nope", 404), ("OPTIONS", "/nope", 404), ("POST", "/health", 405),
])
def test_routing_errors_are_the_envelope(client, request_log, method, path, status):
    response = client.open(path, method=method)
    refused(response, status, request_log)
    if status == 405:
        assert response.headers["Allow"]


@pytest.fixture(scope="module")
def probe_app(app):
    """An app with two extra routes: one raising each Werkzeug HTTP error, one whose write fails."""
    from flask import abort
    from flask_jwt_extended import get_current_user, jwt_required

    from conf.settings import TestingConfig
    from webapp import create_app
    from webapp.extensions import db
    from webapp.posts.models import Post

    config = TestingConfig().override(INSTANCE_PATH=app.config["INSTANCE_PATH"],
                                      MEDIA_ROOT=app.config["MEDIA_ROOT"], DATABASE_URL=app.config["DATABASE_URL"])
    probe = create_app(config)
    probe.add_url_rule("/api/v1/probe/abort/<int:code>", "probe_abort", lambda code: abort(code))

    @jwt_required()
    def failing_write():
        db.session.add(Post(author=get_current_user(), title="\ud800", content="x"))
        db.session.flush()  # the driver cannot encode the lone surrogate

    probe.add_url_rule("/api/v1/probe/failing-write", "probe_failing_write", failing_write, methods=["POST"])
    return probe


@pytest.mark.parametrize("code", [400, 413, 414, 431, 405, 416, 501])
def test_every_http_error_werkzeug_raises_is_the_envelope(probe_app, request_log, code):
    refused(probe_app.test_client().get(f"/api/v1/probe/abort/{code}"), code, request_log)


def test_a_signed_in_write_that_fails_in_the_database_still_logs_its_line(probe_app, alice, request_log):
    """Reading the caller's id for the log line must not touch the session the failure left behind."""
    response = probe_app.test_client().post("/api/v1/probe/failing-write", headers=alice.headers)
    assert response.status_code == 422
    lines = [line for line in request_log() if line["request_id"] == response.headers["X-Request-ID"]]
    assert len(lines) == 1 and lines[0]["user_id"] == alice.id and lines[0]["status"] == 422


def test_a_request_refused_before_any_view_has_its_request_id(client, alice, request_log):
    response = client.post("/api/v1/posts", json={"title": "t", "content": "c"},
                           headers={**alice.headers, "Idempotency-Key": "has spaces", "X-Request-ID": "probe-1"})
    assert response.status_code == 422 and response.headers["X-Request-ID"] == "probe-1"
    assert [line["status"] for line in request_log() if line["request_id"] == "probe-1"] == [422]


def test_refused_input_still_counts_against_the_rate_limit(app):
    """The guards run after the limiter: a flood of unreadable bodies meets the same 429."""
    from conf.settings import TestingConfig
    from webapp import create_app

    config = TestingConfig().override(INSTANCE_PATH=app.config["INSTANCE_PATH"], REDIS_URL="",
                                      DATABASE_URL=app.config["DATABASE_URL"], RATELIMIT_DEFAULT="3/minute")
    client = create_app(config).test_client()
    statuses = [client.post("/api/v1/users", data=DEEP, content_type="application/json").status_code
                for _ in range(4)]
    assert statuses == [400, 400, 400, 429]


# --- through a live gunicorn ---------------------------------------------------------------------

def _raw(port: int, request: bytes) -> tuple[int, dict, bytes]:
    """Send bytes as they are (no client library tidies them up); the status, headers and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def _request(method: str, target: bytes, headers: dict | None = None, body: bytes = b"") -> bytes:
    headers = {"Host": "127.0.0.1", "Connection": "close", **(headers or {})}
    if body and "Transfer-Encoding" not in headers:
        headers["Content-Length"] = str(len(body))
    head = b"".join(f"{key}: {value}\r\n".encode("latin-1") for key, value in headers.items())
    return method.encode() + b" " + target + b" HTTP/1.1\r\n" + head + b"\r\n" + body


def _chunks(body: bytes, size=65536) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                    for i in range(0, len(body), size)) + b"0\r\n\r\n"


def test_hostile_input_through_gunicorn(app, gunicorns, make_user):
    if app.config["DATABASE_URL"].startswith("sqlite"):
        migrate(app.config["DATABASE_URL"], app.config["INSTANCE_PATH"] / "migrate")
    web = gunicorns(DATABASE_URL=app.config["DATABASE_URL"], LOG_LEVEL="INFO")
    user = make_user(email="live@example.com")
    import requests

    access = requests.post(f"{web.base}/api/v1/auth/login", json={"email": user.email, "password": PASSWORD},
                           timeout=10).json()["access_token"]
    json_headers = {"Content-Type": "application/json", "Authorization": f"Bearer {access}"}
    oversized = b'{"title": "t", "content": "' + b"x" * (7 * 1024 * 1024) + b'"}'
    app_answers = [  # (request, status): answered by the app, in the envelope, with a log line
        (_request("POST", b"/api/v1/users", {"Content-Type": "application/json"},
                  b'{"name": "\\ud800", "email": "s@example.com", "password": "a long passphrase 1"}'), 400),
        (_request("POST", b"/api/v1/posts", json_headers, DEEP), 400),
        (_request("POST", b"/api/v1/posts", json_headers, b'{"title": ' + HUGE_INT + b"}"), 400),
        (_request("POST", b"/api/v1/posts", json_headers, b'{"title": NaN}'), 400),
        (_request("GET", b"/api/v1/posts?author_id=" + HUGE_INT), 422),
        (_request("GET", b"/api/v1/posts?page=99999999999999999999"), 422),
        (_request("GET", b"/api/v1/users/99999999999999999999999", json_headers), 404),
        (_request("GET", b"/api/v1/posts?q=%ED%A0%80"), 400),
        (_request("GET", b"/api/v1/posts/%ff"), 400),
        (_request("POST", b"/api/v1/posts", {**json_headers, "Transfer-Encoding": "chunked"}, _chunks(oversized)), 413),
        (_request("POST", b"/api/v1/posts", {**json_headers, "Transfer-Encoding": "chunked"}, b"zz\r\n"), 400),
        (_request("PUT", f"/api/v1/users/{user.id}/avatar".encode(),
                  {"Authorization": f"Bearer {access}", "Content-Type": MULTIPART},
                  b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nabc'), 422),
        (_request("OPTIONS", b"/api/v1/posts"), 204),
    ]
    seen = []
    for raw, status in app_answers:
        got, headers, body = _raw(web.port, raw)
        assert got == status, (raw[:80], got, body[:200])
        assert status == 204 or body.startswith(b'{"code":%d,' % status)
        seen.append((headers["x-request-id"], status))
    # gunicorn answers these itself (its own HTML page, its own log line), never with a 5xx.
    gunicorn_answers = [
        (_request("GET", b"/api/v1/posts/\xed\xa0\x80"), 400),           # raw non-ASCII in the request line
        (_request("GET", b"/api/v1/posts?" + b"a" * 9000), 414),
        (_request("GET", b"/api/v1/posts", {"X-Big": "a" * 9000}), 431),
        (_request("GET", b"/api/v1/posts", {"Content-Length": "abc"}), 400),
    ]
    for raw, status in gunicorn_answers:
        assert _raw(web.port, raw)[0] == status
    log = web.log.read_text()
    for request_id, status in seen:
        lines = [line for line in log.splitlines()
                 if f'"request_id": "{request_id}"' in line and '"msg": "request"' in line]
        assert len(lines) == 1 and f'"status": {status}' in lines[0], request_id
    assert not re.search(r'"status": 5\d\d', log) and "unhandled error" not in log
    assert log.count("Invalid request from ip=") >= len(gunicorn_answers)
