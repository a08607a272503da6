"""The library seams in webapp/compat/: each test fails when the library stops calling an override,
or changes a name or a signature the override relies on (a pinned library's upgrade shows here first).

Two checks per seam: the library's side still has the shape the override was written against
(`inspect.signature`, the attributes it reads), and a real request goes through the override
(a counter patched onto it sees the request) with the answer a client expects.
"""
from __future__ import annotations

import hashlib
import inspect
import warnings

import flask_jwt_extended
import flask_smorest
import pytest
from flask_jwt_extended import JWTManager
from flask_jwt_extended import tokens as jwt_tokens
from flask_jwt_extended.config import config as jwt_config
from flask_limiter import Limiter
from flask_limiter._manager import LimitManager
from flask_smorest import etag as smorest_etag
from flask_smorest import pagination as smorest_pagination
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper
from webargs.flaskparser import FlaskParser

from conf.settings import TestingConfig as Settings
from webapp import create_app
from webapp.cli import upgrade
from webapp.compat import flask_limiter as limiter_compat
from webapp.compat import flask_smorest as smorest_compat
from webapp.compat import sqlalchemy as orm_compat
from webapp.compat.flask_jwt_extended import SingleKeyJWTManager
from webapp.extensions import db
from webapp.users.models import User


def params(func) -> list[str]:
    return list(inspect.signature(func).parameters)


def counting(monkeypatch, owner, name, calls: list):
    """Replace `owner.name` by a wrapper that records each call, then runs the original."""
    original = inspect.getattr_static(owner, name)
    function = original.__func__ if isinstance(original, staticmethod) else original

    def spy(*args, **kwargs):
        calls.append(args)
        return function(*args, **kwargs)

    monkeypatch.setattr(owner, name, staticmethod(spy) if isinstance(original, staticmethod) else spy)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# --- flask-limiter -------------------------------------------------------------------------------

@pytest.fixture
def limited_app(tmp_path):
    """An app of its own with a small application limit, counting in memory."""
    def build(**settings):
        config = Settings().override(INSTANCE_PATH=tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'c.db'}",
                                          REDIS_URL="", RATELIMIT_ENABLED=True, **settings)
        app = create_app(config)
        with app.app_context():
            upgrade()
        return app
    return build


def test_flask_limiter_still_has_what_the_short_path_reads(limited_app):
    assert params(Limiter._check_request_limit) == ["self", "callable_name", "in_middleware"]
    assert params(LimitManager.resolve_limits) == ["self", "app", "endpoint", "blueprint", "callable_name",
                                                   "in_middleware", "marked_for_limiting"]
    assert params(LimitManager.exemption_scope) == ["self", "app", "endpoint", "blueprint"]
    assert params(LimitManager.has_hints) == ["self", "endpoint"]
    assert params(LimitManager.set_default_limits) == ["self", "limits"]
    limiter = limited_app().extensions["delta_limiter"]
    for name in ("_storage_dead", "_headers_enabled", "_meta_limits", "_request_filters", "_marked_for_limiting",
                 "_key_prefix", "limit_manager", "_storage", "_limiter", "limiter", "enabled", "initialized"):
        assert hasattr(limiter, name), name
    assert limiter.limit_manager.default_limits == []  # drop_default_limits applied
    limits = limiter.limit_manager.application_limits
    assert limits and all(name in dir(lim) for lim in limits for name in (  # dir: properties need a request
        "is_exempt", "method_exempt", "key_func", "scope_for", "limit", "deduction_amount", "deduct_when",
        "meta_limits"))
    assert params(type(limits[0]).scope_for) == ["self", "endpoint", "method"]


def test_a_plain_request_is_counted_by_the_short_path(limited_app, monkeypatch):
    ours, theirs = [], []
    counting(monkeypatch, limiter_compat.DeltaLimiter, "_check_request_limit", ours)  # before init_app binds it
    counting(monkeypatch, Limiter, "_check_request_limit", theirs)
    client = limited_app(RATELIMIT_DEFAULT="3/minute").test_client()
    assert [client.get("/api/v1/users/me").status_code for _ in range(3)] == [401] * 3
    assert len(ours) == 3 and theirs == []  # counted the short way, flask-limiter's check untouched
    refused = client.get("/api/v1/users/me")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1  # so the short way counted
    assert len(theirs) == 1  # a refusal is answered by flask-limiter


def test_limits_are_resolved_once_per_endpoint(limited_app):
    app = limited_app()
    client = app.test_client()
    for _ in range(3):
        client.get("/api/v1/users/me")
    manager = app.extensions["delta_limiter"].limit_manager
    assert manager.resolve_limits.cache_info().hits >= 2


def test_counting_in_memory_still_counts(limited_app):
    app = limited_app(RATELIMIT_DEFAULT="1/minute")
    limiter_compat.count_in_memory(app.extensions["delta_limiter"])
    client = app.test_client()
    assert client.get("/api/v1/users/me").status_code == 401
    assert client.get("/api/v1/users/me").status_code == 429


# --- flask-smorest --------------------------------------------------------------------------------

def test_flask_smorest_still_has_what_the_etag_overrides_replace():
    mixin = smorest_etag.EtagMixin
    assert params(mixin._set_etag_in_response) == ["self", "response"]
    assert params(mixin._check_not_modified) == ["self", "etag"]
    assert params(mixin._check_precondition) == ["self"]
    assert params(mixin.check_etag) == ["self", "etag_data", "etag_schema"]
    assert params(mixin._prepare_etag_doc) == ["self", "doc", "doc_info", "api", "spec", "method", "kwargs"]
    assert params(smorest_etag._get_etag_ctx) == []
    assert "METHODS_ALLOWING_SET_ETAG" in dir(mixin) and "_set_etag_in_response(resp)" in inspect.getsource(mixin.etag)
    assert "_check_precondition()" in inspect.getsource(mixin.etag)
    assert '"etag_checked"' in inspect.getsource(mixin._verify_check_etag)


def test_the_etag_is_the_hash_of_the_body_sent(client, make_user, token, monkeypatch):
    calls = []
    counting(monkeypatch, smorest_compat.EtagBlueprint, "_set_etag_in_response", calls)
    headers = bearer(token(make_user()))
    response = client.get("/api/v1/users/me", headers=headers)
    assert response.status_code == 200 and len(calls) == 1
    assert response.headers["ETag"] == f'"{hashlib.sha1(response.data).hexdigest()}"'
    again = client.get("/api/v1/users/me", headers={**headers, "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304  # _check_not_modified still answers


def test_if_match_is_optional_and_checked_when_sent(client, make_user, token, monkeypatch):
    calls = []
    counting(monkeypatch, smorest_compat.EtagBlueprint, "_check_precondition", calls)
    user = make_user()
    headers = bearer(token(user))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answer = client.patch(f"/api/v1/users/{user.id}", json={"name": "No If-Match"}, headers=headers)
    assert answer.status_code == 200 and calls  # no 428 without If-Match
    assert not [w for w in caught if "ETag not checked" in str(w.message)]  # check_etag marked the context
    stale = client.patch(f"/api/v1/users/{user.id}", json={"name": "Stale"}, headers={**headers, "If-Match": '"0"'})
    assert stale.status_code == 412 and stale.get_json()["code"] == 412
    fresh = client.get(f"/api/v1/users/{user.id}", headers=headers).headers["ETag"]
    assert client.patch(f"/api/v1/users/{user.id}", json={"name": "Fresh"},
                        headers={**headers, "If-Match": fresh}).status_code == 200


def test_the_openapi_documents_if_match_as_optional_and_x_pagination_as_json(client):
    spec = client.get("/openapi.json").get_json()
    patch = spec["paths"]["/api/v1/users/{user_id}"]["patch"]
    assert "428" not in patch["responses"]
    if_match = [p for p in patch["parameters"] if isinstance(p, dict) and p.get("name") == "If-Match"]
    assert if_match and if_match[0]["required"] is False
    assert spec["components"]["headers"]["PAGINATION"]["schema"] == {"type": "string"}


def test_the_pagination_header_is_registered_through_the_override(monkeypatch, tmp_path):
    calls = []
    counting(monkeypatch, smorest_compat.Api, "_register_pagination_header", calls)
    assert params(flask_smorest.Api._register_pagination_header) == ["self"]
    create_app(Settings().override(INSTANCE_PATH=tmp_path))
    assert len(calls) == 1


def test_page_numbers_are_bounded(client, make_user, token):
    assert params(smorest_compat._smorest_page_schema) == ["def_page", "def_page_size", "def_max_page_size"]
    assert "_pagination_parameters_schema_factory(" in inspect.getsource(smorest_pagination.PaginationMixin.paginate)
    assert smorest_pagination._pagination_parameters_schema_factory.__qualname__.startswith("bound_page_numbers")
    from webapp.pagination import MAX_PAGE

    headers = bearer(token(make_user()))
    assert client.get(f"/api/v1/users?page={MAX_PAGE}", headers=headers).status_code == 200
    refused = client.get(f"/api/v1/users?page={MAX_PAGE + 1}", headers=headers)
    assert refused.status_code == 422 and "page" in refused.get_json()["errors"]


def test_the_arguments_parser_builds_each_schema_once(client, make_user, token, monkeypatch):
    """Public seams: flask-smorest's ARGUMENTS_PARSER / PAGINATION_ARGUMENTS_PARSER and webargs' `parse`."""
    from webapp.rest.common import Blueprint

    assert params(FlaskParser.parse)[:3] == ["self", "argmap", "req"]
    assert "self.parse(" in inspect.getsource(FlaskParser.use_args)
    assert "PAGINATION_ARGUMENTS_PARSER.parse(" in inspect.getsource(smorest_pagination.PaginationMixin.paginate)
    parser = Blueprint.ARGUMENTS_PARSER
    assert Blueprint.PAGINATION_ARGUMENTS_PARSER is parser
    headers = bearer(token(make_user()))
    assert client.get("/api/v1/users?page=1", headers=headers).status_code == 200
    cached = [cls for cls in parser._schemas if cls.__name__ == "PaginationParametersSchema"]
    assert cached
    built = []
    for cls in cached:
        counting(monkeypatch, cls, "__init__", built)
    assert client.get("/api/v1/users?page=2", headers=headers).status_code == 200
    assert built == []  # the next request reused the instance


# --- flask-jwt-extended -----------------------------------------------------------------------------

def test_flask_jwt_extended_still_decodes_through_the_override():
    assert params(JWTManager._decode_jwt_from_config) == ["self", "encoded_token", "csrf_value", "allow_expired"]
    assert "_decode_jwt_from_config(" in inspect.getsource(flask_jwt_extended.utils.decode_token)
    assert {"algorithms", "audience", "csrf_value", "encoded_token", "identity_claim_key", "issuer", "leeway",
            "secret", "verify_aud", "verify_sub", "allow_expired"} <= set(params(jwt_tokens._decode_jwt))
    for name in ("decode_algorithms", "decode_audience", "identity_claim_key", "decode_issuer", "leeway",
                 "decode_key", "verify_sub"):
        assert hasattr(type(jwt_config), name), name


def test_a_signed_in_request_decodes_its_token_once(client, make_user, token, monkeypatch):
    calls = []
    counting(monkeypatch, SingleKeyJWTManager, "_decode_once", calls)
    headers = bearer(token(make_user()))
    calls.clear()
    response = client.get("/api/v1/users/me", headers=headers)  # the limiter's key and the view both ask
    assert response.status_code == 200 and len(calls) == 1


def test_a_token_without_exp_is_refused(app, client, make_user):
    import jwt as pyjwt

    user = make_user()
    with app.app_context():
        forged = pyjwt.encode({"sub": str(user.id), "sid": "x", "type": "access", "fresh": False, "jti": "j"},
                              app.config["JWT_SECRET_KEY"], algorithm="HS256")
    answer = client.get("/api/v1/users/me", headers=bearer(forged))
    assert answer.status_code == 401 and answer.get_json()["code"] == 401


# --- SQLAlchemy -------------------------------------------------------------------------------------

def test_sqlalchemy_still_builds_instances_without_a_constructor(app, make_user):
    assert isinstance(inspect.getattr_static(Mapper, "class_manager", None), object)
    assert "state" in params(User.__mapper__.class_manager.new_instance)
    record = make_user(name="Loaded")
    with app.app_context():
        row = {column.name: getattr(db.session.get(User, record.id), column.name) for column in User.__table__.c}
        db.session.remove()
        user = orm_compat.known_row(orm_compat.new_instance(User), row, profile=None)
        state = sa_inspect(user)
        assert state.detached and state.identity == (record.id,)
        assert user.name == "Loaded" and not state.attrs.name.history.has_changes()
        db.session.add(user)  # the row it names: nothing to insert or update
        assert not db.session.new and not db.session.dirty
        db.session.remove()


def test_the_caller_is_built_through_the_override(client, make_user, token, monkeypatch):
    calls = []
    counting(monkeypatch, orm_compat, "new_instance", calls)
    record = make_user(name="Caller")
    headers = bearer(token(record))
    calls.clear()
    response = client.get("/api/v1/users/me", headers=headers)
    assert response.status_code == 200 and response.get_json()["name"] == "Caller"
    assert User in [args[0] for args in calls]


# --- strawberry -------------------------------------------------------------------------------------

def test_strawberry_still_keeps_the_graphql_core_schema_it_executes(app):
    from graphql import GraphQLField, GraphQLSchema

    from webapp.graphql.posts import DIRECT_RESOLVERS

    schema = app.extensions["delta_graphql_schema"]
    assert isinstance(schema._schema, GraphQLSchema) and "resolve" in params(GraphQLField.__init__)
    for (type_name, field_name), resolve in DIRECT_RESOLVERS.items():
        assert schema._schema.type_map[type_name].fields[field_name].resolve is resolve


def test_list_fields_skip_strawberrys_wrapper_and_answer_the_same(app, client, make_user, token, monkeypatch):
    """graphql-core calls `Post.author` and `User.posts` itself: strawberry's per-call wrapper
    (StrawberryField.get_result) never runs for them, and the answer names the right authors."""
    from strawberry.types.field import StrawberryField

    from webapp.posts.services import create_post

    record = make_user(name="Author")
    with app.app_context():
        create_post(db.session, db.session.get(User, record.id), title="Hello", published=True)
        db.session.remove()
    fields = []
    original = StrawberryField.get_result
    monkeypatch.setattr(StrawberryField, "get_result",
                        lambda self, *args, **kwargs: fields.append(self.python_name) or original(self, *args, **kwargs))
    query = "{ users(limit: 5) { name posts(limit: 5) { title author { name } } } }"
    body = client.post("/graphql", json={"query": query}, headers=bearer(token(record))).get_json()
    assert body == {"data": {"users": [{"name": "Author", "posts": [{"title": "Hello", "author": {"name": "Author"}}]}]}}
    assert "users" in fields and "posts" not in fields and "author" not in fields


def test_graphql_core_still_executes_each_subscription_event_through_the_executor_strawberry_is_given():
    from graphql.execution import execute_subscription_event, map_source_to_response_event
    from graphql.execution.executor import Executor
    from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

    from webapp.compat.strawberry import SharedResults

    assert issubclass(SharedResults, StrawberryGraphQLCoreExecutionContext) and issubclass(SharedResults, Executor)
    assert params(Executor.build_per_event_executor) == ["self", "payload"]
    assert params(Executor.execute_operation) == ["self", "serially"]
    assert "executor.execute_operation(" in inspect.getsource(execute_subscription_event)
    assert "build_per_event_executor" in inspect.getsource(map_source_to_response_event)


def test_a_public_post_is_executed_once_per_document_for_all_its_subscribers(app, monkeypatch):
    """Four subscribers of one event, three documents: three executions, and each subscriber gets
    what its own document asks (its authorId filter applied before anything is shared)."""
    import asyncio
    from copy import copy

    from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

    from webapp.compat.strawberry import SharedResults
    from webapp.events.sources import Event

    shared = copy(app.extensions["delta_graphql_schema"])
    shared.execution_context_class = SharedResults
    executed = []
    original = StrawberryGraphQLCoreExecutionContext.execute_operation
    monkeypatch.setattr(StrawberryGraphQLCoreExecutionContext, "execute_operation",
                        lambda self, serially=None: executed.append(1) or original(self, serially))
    data = {"id": 7, "title": "Shared", "content": "", "published": True, "author_id": 3,
            "created_at": "2026-01-01T00:00:00+00:00", "updated_at": "2026-01-01T00:00:00+00:00"}
    event = Event(id="1-0", topic="posts", type="post.published", data=data)

    class Context:
        def events(self, topic, after=None):
            async def one():
                yield event
            return one()

    async def first(query, variables=None):
        results = await shared.subscribe(query, variable_values=variables, context_value=Context())
        async for result in results:
            await results.aclose()
            return result.data

    async def subscribers():
        return [await first("subscription { postPublished { id title } }"),
                await first("subscription { postPublished { id title } }"),
                await first("subscription { postPublished { title } }"),
                await first("subscription($a: Int) { postPublished(authorId: $a) { id } }", {"a": 3})]

    assert asyncio.run(subscribers()) == [
        {"postPublished": {"id": 7, "title": "Shared"}}, {"postPublished": {"id": 7, "title": "Shared"}},
        {"postPublished": {"title": "Shared"}}, {"postPublished": {"id": 7}}]
    assert len(executed) == 3


def test_uvicorn_still_lets_a_streams_pending_messages_leave_in_one_write():
    """webapp/compat/uvicorn.py: frames and chunks written through uvicorn's own protocol objects
    arrive as the ASGI sends would deliver them (two WebSocket messages, two SSE chunks)."""
    import asyncio
    import json
    import socket

    import httpx
    import uvicorn
    import websockets

    from webapp.compat.uvicorn import chunk_writer, frame_writer

    LONG, LONGER = json.dumps("é" * 200), json.dumps("x" * 70_000)
    async def app(scope, receive, send):
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            writer = frame_writer(send)
            assert writer is not None and writer.open()
            assert writer.write(['{"n":1}', LONG, LONGER])  # the three lengths of a frame header
            await send({"type": "websocket.send", "text": '{"n":3}'})
            await receive()
        elif scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"a\n", "more_body": True})
            writer = chunk_writer(send)
            assert writer is not None and writer.open()
            assert writer.write(["b\n", "c\n"])
            await send({"type": "http.response.body", "body": b"d\n", "more_body": False})

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario():
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
                                               ws="websockets-sansio", http="httptools"))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            received = []
            for compression in ("deflate", None):  # framed by websockets (compressed), and by the seam
                async with websockets.connect(f"ws://127.0.0.1:{port}/", compression=compression) as ws:
                    received.append([await asyncio.wait_for(ws.recv(), 10) for _ in range(4)])
                    assert bool(ws.protocol.extensions) == (compression is not None)
            async with httpx.AsyncClient() as client:
                body = (await client.get(f"http://127.0.0.1:{port}/")).text
        finally:
            server.should_exit = True
            await serving
        return received, body

    received, body = asyncio.run(scenario())
    assert received == [['{"n":1}', LONG, LONGER, '{"n":3}']] * 2
    assert body == "a\nb\nc\nd\n"
    assert frame_writer(lambda message: None) is None and chunk_writer(None) is None  # anything else: no seam


def test_a_subscriptions_kept_result_is_found_and_a_later_event_executed_alike(app):
    """webapp/compat/strawberry.py `shared_executor`/`kept_result`/`result_for`: in the operation's
    task, after its first event, a later event's result is what the full path would give."""
    import asyncio
    from copy import copy

    from webapp.compat.strawberry import SharedResults, kept_result, shared_executor
    from webapp.events.sources import Event
    from webapp.graphql.subscriptions import shared_post

    shared = copy(app.extensions["delta_graphql_schema"])
    shared.execution_context_class = SharedResults

    def event(n):
        data = {"id": n, "title": f"post {n}", "content": "", "published": True, "author_id": 3,
                "created_at": "2026-01-01T00:00:00+00:00", "updated_at": "2026-01-01T00:00:00+00:00"}
        return Event(id=f"{n}-0", topic="posts", type="post.published", data=data)

    class Context:
        def events(self, topic, after=None):
            async def one():
                yield event(40)
            return one()

    async def operation():
        results = await shared.subscribe("subscription { postPublished { title n: id } }", context_value=Context())
        async for result in results:
            first = result
            break
        executor = shared_executor()
        kept = kept_result(shared_post(event(40)))
        later = executor.result_for(shared_post(event(41)))
        await results.aclose()
        return first, kept, later

    first, kept, later = asyncio.run(operation())
    assert kept.data is first.data  # the very result the first event sent (strawberry wraps it)
    assert later.data == {"postPublished": {"title": "post 41", "n": 41}} and not later.errors
