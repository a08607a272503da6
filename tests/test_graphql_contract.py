"""The GraphQL contract as a client developer meets it (PRODUCT.md "GraphQL", issue 18).

The original design's example documents (../shared/spec/seed-graphql-examples.graphql, read as
it is) validate and run unchanged; closed sets are enums; a single object that is not there is
`null` with NOT_FOUND beside the rest of `data`; every request mistake is BAD_USER_INPUT in
development and production alike; and schema.graphql is the schema the app serves.
"""
from __future__ import annotations

import os
from io import BytesIO
from pathlib import Path

import pytest
from graphql import (
    OperationDefinitionNode,
    build_client_schema,
    build_schema,
    get_introspection_query,
    lexicographic_sort_schema,
    parse,
    print_schema,
    validate,
)
from sqlalchemy import select, text

from conf.settings import DevelopmentConfig, ProductionConfig
from webapp import create_app
from webapp.cli import upgrade
from webapp.extensions import db
from webapp.jobs.models import STATUSES
from webapp.jobs.services import FORMATS
from webapp.posts.models import Post
from webapp.users.models import ROLES, User

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT.parent / "shared" / "spec" / "seed-graphql-examples.graphql"
SCHEMA_FILE = ROOT / "schema.graphql"
SECRET = "s3cret-" * 10


def examples() -> str:
    assert EXAMPLES.is_file(), f"the original design's examples are not at {EXAMPLES}"
    return EXAMPLES.read_text()


def operation_names() -> list[str]:
    return [d.name.value for d in parse(examples()).definitions if isinstance(d, OperationDefinitionNode)]


def served_schema(app):
    """The strawberry schema the app's /graphql view runs."""
    return app.extensions["delta_graphql_schema"]


def post_graphql(client, query, variables=None, token=None, operation=None):
    body = {"query": query}
    if variables is not None:
        body["variables"] = variables
    if operation is not None:
        body["operationName"] = operation
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.post("/graphql", json=body, headers=headers)
    assert response.status_code < 500 and response.content_type == "application/json", response.get_data()
    return response.get_json()


def codes(body) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


@pytest.fixture
def user_one(app, make_user):
    """An admin whose id is 1, as the examples assume (`user(id: 1)`, `updateUser(id: 1, ...)`).

    Each test starts with no users, but ids are never handed out twice (SQLite AUTOINCREMENT, a
    PostgreSQL sequence): the id counter is started again, as on a new database.
    """
    with app.app_context():
        assert db.session.scalar(select(User.id).limit(1)) is None
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("SELECT setval(pg_get_serial_sequence('users', 'id'), 1, false)"))
        else:
            db.session.execute(text("DELETE FROM sqlite_sequence WHERE name = 'users'"))
        db.session.commit()
        db.session.remove()
    admin = make_user(name="Ada Admin", email="ada@example.com", role="admin")
    assert admin.id == 1
    return admin


# --- the original design's examples ----------------------------------------------------------

# The operations of the examples file, named here so that a missing file fails these tests one by
# one instead of stopping the whole run at collection.
EXAMPLE_OPERATIONS = ["GetUsers", "GetUser", "SearchUsers", "CreateUser", "GetUserWithPosts",
                      "CreateUserWithProfile", "UpdateUser"]


def test_every_example_document_validates_against_the_served_schema(app):
    document = parse(examples())
    assert validate(build_schema(served_schema(app).as_str()), document) == []
    assert operation_names() == EXAMPLE_OPERATIONS  # a new example in the file gets run too


@pytest.mark.parametrize("operation", EXAMPLE_OPERATIONS)
def test_each_example_document_runs_unchanged(app, client, user_one, token, query_db, operation):
    with app.app_context():  # a post for GetUserWithPosts to list
        db.session.add(Post(author_id=user_one.id, title="Hello", content="First post.", published=True))
        db.session.commit()
        db.session.remove()
    variables = {"userId": user_one.id} if operation == "GetUserWithPosts" else None
    body = post_graphql(client, examples(), variables, token(user_one), operation)
    assert "errors" not in body, body
    data = body["data"]
    expected = {
        "GetUsers": lambda: data["users"][0]["role"] == "admin" and data["users"][0]["email"] == "ada@example.com",
        "GetUser": lambda: data["user"] == {"id": 1, "name": "Ada Admin", "email": "ada@example.com",
                                            "profile": {"firstName": "", "lastName": "", "avatar": None}},
        "SearchUsers": lambda: data["searchUsers"] == [],
        "CreateUser": lambda: data["createUser"]["name"] == "John Doe"
                              and data["createUser"]["email"] == "john@example.com",
        "GetUserWithPosts": lambda: [p["title"] for p in data["user"]["posts"]] == ["Hello"],
        "CreateUserWithProfile": lambda: data["createUser"]["profile"] == {"firstName": "", "lastName": ""},
        "UpdateUser": lambda: (data["updateUser"]["name"], data["updateUser"]["email"])
                              == ("John Smith", "johnsmith@example.com"),
    }
    assert expected.get(operation, lambda: True)(), data
    if operation == "UpdateUser":
        stored = query_db(lambda s: (s.get(User, 1).name, s.get(User, 1).email))
        assert stored == ("John Smith", "johnsmith@example.com")
    if operation.startswith("CreateUser"):
        email = data["createUser"]["email"]
        assert query_db(lambda s: s.scalar(select(User.name).where(User.email == email))) == data["createUser"]["name"]


# --- every mistake is BAD_USER_INPUT, in every mode -------------------------------------------

@pytest.fixture(scope="module", params=["development", "production"])
def mode_client(request, app, tmp_path_factory):
    """A client of an app in that configuration (the suite's database, or SQLite of its own)."""
    home = tmp_path_factory.mktemp(f"contract-{request.param}")
    config_class = DevelopmentConfig if request.param == "development" else ProductionConfig
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{home / 'contract.db'}"
    config = config_class().override(INSTANCE_PATH=home, MEDIA_ROOT=home / "media", DATABASE_URL=url, REDIS_URL="",
                                     SECRET_KEY=SECRET, JWT_SECRET_KEY=SECRET + "jwt")
    mode_app = create_app(config)
    if not os.environ.get("TEST_DATABASE_URL"):  # else the suite's `app` fixture has migrated it
        with mode_app.app_context():
            upgrade()
    client = mode_app.test_client()
    client.env = request.param
    return client


# name → (document or None for the examples' GetUserWithPosts, variables, words the message holds)
MISTAKES = {
    "the examples' GetUserWithPosts without $userId": (None, None, ["$userId"]),
    "the examples' GetUserWithPosts with $userId mistyped": (None, {"userId": "one"}, ["$userId"]),
    "the examples' GetUserWithPosts with $userId null": (None, {"userId": None}, ["$userId"]),
    "a syntax error": ("{ users { id ", None, ["Syntax Error"]),
    "a negative limit": ("{ users(limit: -1) { id } }", None, ["limit", "-1"]),
    "a negative skip": ("{ users(skip: -5) { id } }", None, ["skip", "-5"]),
    "a negative limit from a variable": ("query($l: Int!) { users(limit: $l) { id } }", {"l": -1}, ["limit", "-1"]),
    "a negative skip from a variable": ("query($s: Int) { users(skip: $s) { id } }", {"s": -5}, ["skip", "-5"]),
    "a negative nested limit": ("{ users(limit: 1) { posts(limit: -2) { id } } }", None, ["limit", "-2"]),
    "an export format that is no ExportFormat": ("mutation { requestUserExport(format: xml) { id } }", None,
                                                  ["xml", "ExportFormat"]),
    "an export format as a string literal": ('mutation { requestUserExport(format: "csv") { id } }', None,
                                             ["ExportFormat"]),
    "a role that is no Role, from a variable": (
        "mutation($i: UpdateUserInput!) { updateUser(id: 1, input: $i) { id } }", {"i": {"role": "root"}},
        ["root", "Role"]),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_every_request_mistake_is_bad_user_input_in_every_mode(mode_client, case):
    document, variables, words = MISTAKES[case]
    operation = None
    if document is None:
        document, operation = examples(), "GetUserWithPosts"
    body = post_graphql(mode_client, document, variables, operation=operation)
    assert body.get("data") is None and codes(body) == ["BAD_USER_INPUT"] * len(body["errors"]), body
    message = body["errors"][0]["message"]
    assert all(word in message for word in words), (mode_client.env, message)
    assert mode_client.env != "production" or "Did you mean" not in message


# --- enums -------------------------------------------------------------------------------------

TYPE_QUERY = """query($name: String!) { __type(name: $name) { kind enumValues { name }
  fields { name type { ...T } args { name defaultValue type { ...T } } } inputFields { name type { ...T } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name } } }"""


def introspect(client, name):
    body = post_graphql(client, TYPE_QUERY, {"name": name})
    assert "errors" not in body, body
    return body["data"]["__type"]


def named(type_ref):
    while type_ref["ofType"]:
        type_ref = type_ref["ofType"]
    return type_ref["kind"], type_ref["name"]


def test_closed_sets_are_enums_with_the_services_values(client):
    for name, values in (("Role", ROLES), ("JobStatus", STATUSES), ("ExportFormat", FORMATS)):
        enum = introspect(client, name)
        assert enum["kind"] == "ENUM" and [v["name"] for v in enum["enumValues"]] == list(values), enum
    fields = lambda type_name: {f["name"]: f for f in introspect(client, type_name)["fields"]}  # noqa: E731
    assert named(fields("User")["role"]["type"]) == ("ENUM", "Role")
    assert named(fields("Job")["status"]["type"]) == ("ENUM", "JobStatus")
    update_input = {f["name"]: f for f in introspect(client, "UpdateUserInput")["inputFields"]}
    assert named(update_input["role"]["type"]) == ("ENUM", "Role")
    export = fields("Mutation")["requestUserExport"]["args"]
    assert [(a["name"], a["type"]["kind"], named(a["type"]), a["defaultValue"]) for a in export] == [
        ("format", "NON_NULL", ("ENUM", "ExportFormat"), "csv")]


def test_an_admin_sets_a_role_and_exports_with_enum_values(client, make_user, token, query_db):
    admin, bob = make_user(role="admin"), make_user()
    body = post_graphql(client, "mutation($id: Int!) { updateUser(id: $id, input: {role: admin}) { role } }",
                        {"id": bob.id}, token(admin))
    assert body == {"data": {"updateUser": {"role": "admin"}}}
    assert query_db(lambda s: s.get(User, bob.id).role) == "admin"
    body = post_graphql(client, "mutation($i: UpdateUserInput!, $id: Int!) { updateUser(id: $id, input: $i) { role } }",
                        {"id": bob.id, "i": {"role": "user"}}, token(admin))  # a variable: the same string as REST
    assert body == {"data": {"updateUser": {"role": "user"}}}
    assert query_db(lambda s: s.get(User, bob.id).role) == "user"

    for document, variables, fmt in (
            ("mutation { requestUserExport(format: json) { id status params } }", None, "json"),
            ("mutation($f: ExportFormat!) { requestUserExport(format: $f) { id status params } }",
             {"f": "json"}, "json"),
            ("mutation { requestUserExport { id status params } }", None, "csv")):  # the default
        body = post_graphql(client, document, variables, token(admin))
        assert "errors" not in body, body
        job = body["data"]["requestUserExport"]
        assert job["status"] in STATUSES and job["params"]["format"] == fmt, job
        again = post_graphql(client, "query($id: Int!) { job(id: $id) { status } }", {"id": job["id"]}, token(admin))
        assert again["data"]["job"]["status"] in STATUSES


# --- Profile.avatar ----------------------------------------------------------------------------

def test_profile_avatar_is_the_avatar_url(client, make_user, token):
    from tests.test_profiles import image_bytes

    alice, bob = make_user(), make_user()
    uploaded = client.put(f"/api/v1/users/{alice.id}/avatar", data={"file": (BytesIO(image_bytes()), "a.png")},
                          headers={"Authorization": f"Bearer {token(alice)}"}, content_type="multipart/form-data")
    assert uploaded.status_code == 200, uploaded.get_json()
    query = "query($id: Int!) { user(id: $id) { profile { avatar avatarUrl } } }"
    with_avatar = post_graphql(client, query, {"id": alice.id}, token(bob))["data"]["user"]["profile"]
    assert with_avatar["avatar"] is not None
    assert with_avatar["avatar"] == with_avatar["avatarUrl"] == uploaded.get_json()["avatar_url"]
    without = post_graphql(client, query, {"id": bob.id}, token(bob))["data"]["user"]["profile"]
    assert without == {"avatar": None, "avatarUrl": None}


# --- consistent nulls --------------------------------------------------------------------------

def test_a_single_object_that_is_not_there_is_null_with_not_found(client, make_user, token):
    alice, bob = make_user(), make_user()
    with client.application.app_context():  # bob's draft: not there for alice
        draft = Post(author_id=bob.id, title="Draft", content="", published=False)
        db.session.add(draft)
        db.session.commit()
        draft_id = draft.id
        db.session.remove()
    bobs_job = post_graphql(client, "mutation { requestMyDataExport { id } }", token=token(bob))
    job_id = bobs_job["data"]["requestMyDataExport"]["id"]

    for missing in ({"user": 999_999, "post": 999_999, "job": 999_999},
                    {"user": 999_999, "post": draft_id, "job": job_id}):  # there, but not for alice
        body = post_graphql(client, "query($u: Int!, $p: Int!, $j: Int!) { me { id } user(id: $u) { id } "
                                    "post(id: $p) { id } job(id: $j) { id } }",
                            {"u": missing["user"], "p": missing["post"], "j": missing["job"]}, token(alice))
        assert body["data"] == {"me": {"id": alice.id}, "user": None, "post": None, "job": None}, body
        assert sorted((e["path"], e["extensions"]["code"]) for e in body["errors"]) == [
            (["job"], "NOT_FOUND"), (["post"], "NOT_FOUND"), (["user"], "NOT_FOUND")]
    for field in ("user", "post", "job"):  # alone, too: the field is null, `data` is not
        body = post_graphql(client, f"{{ {field}(id: 999999) {{ id }} }}", token=token(alice))
        assert body["data"] == {field: None} and codes(body) == ["NOT_FOUND"], body


# --- schema.graphql ----------------------------------------------------------------------------

def test_schema_graphql_is_the_served_schema(app, client):
    # After a schema change, regenerate it with `make schema` (see the Makefile: it prints
    # `build_schema().as_str()` of webapp/graphql/schema.py into schema.graphql) and commit the diff.
    assert SCHEMA_FILE.is_file(), "schema.graphql is missing: run `make schema`"
    checked_in = SCHEMA_FILE.read_text()
    assert checked_in == served_schema(app).as_str() + "\n", "schema.graphql is stale: run `make schema`"

    # and what /graphql tells a client by introspection is that schema too
    body = post_graphql(client, get_introspection_query(descriptions=True, specified_by_url=True))
    assert "errors" not in body, body
    normal = lambda schema: print_schema(lexicographic_sort_schema(schema))  # noqa: E731
    assert normal(build_client_schema(body["data"])) == normal(build_schema(checked_in))
