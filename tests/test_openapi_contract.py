"""/openapi.json as generators read it: names, security, errors, headers, required fields, enums, paging.

PRODUCT.md "The OpenAPI document is a contract that generators can trust". What the document says
is checked against what the server does where a generated client would notice: a request built
from the document's defaults, the 202 bodies, the error bodies of the declared statuses.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess

import pytest

from webapp.jobs.models import KINDS, STATUSES
from webapp.jobs.services import FORMATS
from webapp.users.models import ROLES

API = "/api/v1"
ERROR_REF = "#/components/schemas/Error"

OPERATION_IDS = {
    ("post", "/auth/login"): "login",
    ("post", "/auth/mfa/totp"): "enrollTotp", ("delete", "/auth/mfa/totp"): "disableTotp",
    ("post", "/auth/mfa/totp/confirm"): "confirmTotp", ("post", "/auth/mfa/verify"): "verifyMfa",
    ("post", "/auth/refresh"): "refreshTokens",
    ("post", "/auth/logout"): "logout",
    ("post", "/auth/password"): "changePassword",
    ("post", "/auth/verify-email"): "verifyEmail",
    ("post", "/auth/verify-email/resend"): "resendVerificationEmail",
    ("post", "/auth/password-reset"): "requestPasswordReset",
    ("post", "/auth/password-reset/confirm"): "confirmPasswordReset",
    ("post", "/users"): "createUser",
    ("get", "/users"): "listUsers",
    ("get", "/users/me"): "getCurrentUser",
    ("get", "/users/{user_id}"): "getUser",
    ("put", "/users/{user_id}"): "replaceUser",
    ("patch", "/users/{user_id}"): "updateUser",
    ("delete", "/users/{user_id}"): "deleteUser",
    ("get", "/users/me/sessions"): "listSessions",
    ("delete", "/users/me/sessions/{sid}"): "deleteSession",
    ("get", "/users/{user_id}/profile"): "getProfile",
    ("patch", "/users/{user_id}/profile"): "updateProfile",
    ("put", "/users/{user_id}/avatar"): "uploadAvatar",
    ("get", "/posts"): "listPosts",
    ("post", "/posts"): "createPost",
    ("get", "/posts/{post_id}"): "getPost",
    ("put", "/posts/{post_id}"): "replacePost",
    ("patch", "/posts/{post_id}"): "updatePost",
    ("delete", "/posts/{post_id}"): "deletePost",
    ("get", "/users/{user_id}/posts"): "listUserPosts",
    ("post", "/jobs/user-export"): "requestUserExport",
    ("post", "/jobs/user-import"): "requestUserImport",
    ("post", "/users/me/export"): "requestAccountExport",
    ("get", "/jobs"): "listJobs",
    ("get", "/jobs/{job_id}"): "getJob",
    ("delete", "/jobs/{job_id}"): "cancelJob",
    ("get", "/jobs/{job_id}/result"): "getJobResult",
    ("get", "/auth/oidc"): "listOidcProviders",
    ("get", "/auth/oidc/{provider}/authorize"): "startOidcSignIn",
    ("get", "/auth/oidc/{provider}/callback"): "finishOidcSignIn",
    ("post", "/auth/oidc/exchange"): "exchangeOidcCode",
    ("get", "/meta"): "getMeta",
    ("get", "/users/me/tokens"): "listMyTokens", ("post", "/users/me/tokens"): "createToken",
    ("delete", "/users/me/tokens/{token_id}"): "deleteMyToken",
    ("get", "/users/{user_id}/tokens"): "listUserTokens",
    ("delete", "/users/{user_id}/tokens/{token_id}"): "deleteUserToken",
}
PUBLIC = {"login", "verifyMfa", "refreshTokens", "verifyEmail", "requestPasswordReset", "confirmPasswordReset", "createUser",
          "listPosts", "getPost", "listUserPosts",
          "listOidcProviders", "startOidcSignIn", "finishOidcSignIn", "exchangeOidcCode", "getMeta"}
# Statuses each operation must declare (besides 400 and 429, which every one must).
ERRORS = {
    "login": {401, 422},
    "enrollTotp": {401, 403, 409}, "disableTotp": {401, 403, 409, 413, 422},
    "confirmTotp": {401, 403, 409, 422}, "verifyMfa": {401, 422},
    "refreshTokens": {401, 422}, "logout": {401}, "changePassword": {401, 403, 422},
    "verifyEmail": {422}, "resendVerificationEmail": {401}, "requestPasswordReset": {422},
    "confirmPasswordReset": {422}, "createUser": {409, 413, 422},
    "listUsers": {401, 422}, "getCurrentUser": {401}, "getUser": {401, 404},
    "replaceUser": {401, 403, 404, 409, 412, 413, 422}, "updateUser": {401, 403, 404, 409, 412, 413, 422},
    "deleteUser": {401, 403, 404, 409, 412}, "listSessions": {401}, "deleteSession": {401, 404},
    "getProfile": {401, 404}, "updateProfile": {401, 403, 404, 412, 422},
    "uploadAvatar": {401, 403, 404, 413, 415, 422},
    "listPosts": {401, 422}, "createPost": {401, 403, 413, 422}, "getPost": {401, 404},
    "replacePost": {401, 403, 404, 412, 422}, "updatePost": {401, 403, 404, 412, 422},
    "deletePost": {401, 403, 404, 412}, "listUserPosts": {401, 404, 422},
    "requestUserExport": {401, 403, 422}, "requestUserImport": {401, 403, 413, 422},
    "requestAccountExport": {401}, "listJobs": {401, 422}, "getJob": {401, 404},
    "cancelJob": {401, 404, 409}, "getJobResult": {401, 404, 409},
    "startOidcSignIn": {404, 422, 503}, "finishOidcSignIn": {400, 404, 422}, "exchangeOidcCode": {400, 422},
}


@pytest.fixture(scope="module")
def spec(app):
    return app.test_client().get("/openapi.json").get_json()


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in {"get", "put", "post", "patch", "delete"}:
                yield method, path, operation


def by_id(spec, operation_id):
    return next(op for _, _, op in operations(spec) if op["operationId"] == operation_id)


def resolve(spec, node):
    while "$ref" in node:
        section, name = node["$ref"].split("/")[-2:]
        node = spec["components"][section][name]
    return node


def schema(spec, name):
    return spec["components"]["schemas"][name]


def test_every_operation_has_its_stable_id_a_summary_a_description_and_a_tag(spec):
    found = {(method, path.removeprefix(API)): op["operationId"] for method, path, op in operations(spec)}
    assert found == OPERATION_IDS
    declared_tags = {tag["name"] for tag in spec["tags"]}
    for method, path, op in operations(spec):
        assert op["summary"].strip() and op["description"].strip(), (method, path)
        assert op["tags"] and set(op["tags"]) <= declared_tags, (method, path)


def test_public_operations_say_so_and_the_others_ask_for_the_bearer_token(spec):
    for method, path, op in operations(spec):
        expected = [] if op["operationId"] in PUBLIC else [{"bearerAuth": []}]
        assert op["security"] == expected, (method, path)


def test_the_document_names_a_server(spec):
    assert spec["servers"] and all(server["url"] for server in spec["servers"])


def test_each_status_an_operation_can_answer_is_declared_with_the_error_schema(spec):
    for operation_id, statuses in ERRORS.items():
        responses = by_id(spec, operation_id)["responses"]
        for status in statuses | {400, 429}:
            assert str(status) in responses, (operation_id, status)
            response = resolve(spec, responses[str(status)])
            assert response["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}, (operation_id, status)
    error = schema(spec, "Error")
    assert set(error["required"]) == {"code", "status", "message"}
    assert resolve(spec, by_id(spec, "listPosts")["responses"]["429"])["headers"]["Retry-After"]


def test_every_error_status_of_every_operation_uses_the_error_schema(spec):
    for method, path, op in operations(spec):
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")) or status == "default":
                content = resolve(spec, response)["content"]
                assert content["application/json"]["schema"] == {"$ref": ERROR_REF}, (method, path, status)


def test_headers_are_declared_where_they_are_sent(spec):
    created = by_id(spec, "createPost")["responses"]["201"]["headers"]
    assert "Location" in created
    for operation_id in ("requestUserExport", "requestUserImport", "requestAccountExport"):
        assert "Location" in by_id(spec, operation_id)["responses"]["202"]["headers"], operation_id
    for operation_id in ("listPosts", "listUserPosts"):
        headers = by_id(spec, operation_id)["responses"]["200"]["headers"]
        assert {"ETag", "X-Pagination", "X-Next-Cursor", "Link"} <= set(headers), operation_id
    assert {"ETag", "X-Pagination"} <= set(by_id(spec, "listUsers")["responses"]["200"]["headers"])
    assert "ETag" in by_id(spec, "getUser")["responses"]["200"]["headers"]
    result = by_id(spec, "getJobResult")["responses"]["200"]
    assert {"text/csv", "application/json"} <= set(result["content"])


def test_response_schemas_list_required_fields_and_mark_nullable_ones(spec):
    def required(name):
        return set(schema(spec, name)["required"])

    assert required("User") == {"id", "name", "role", "created_at", "profile"}  # the private fields may be absent
    assert required("Post") == set(schema(spec, "Post")["properties"])
    assert required("Author") == {"id", "name"}
    assert required("Job") == set(schema(spec, "Job")["properties"])
    assert required("Profile") == set(schema(spec, "Profile")["properties"])
    assert required("Session") == set(schema(spec, "Session")["properties"])
    assert required("Token") == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert required("Message") == {"message"}
    nullable = {(name, field) for name, body in spec["components"]["schemas"].items()
                for field, prop in body.get("properties", {}).items() if prop.get("nullable")}
    assert {("User", "email_verified"), ("Profile", "avatar_url"), ("Job", "started_at"), ("Job", "finished_at"),
            ("Job", "error"), ("Job", "result_url")} <= nullable
    assert ("Post", "title") not in nullable and ("User", "name") not in nullable


def test_closed_sets_are_enums_in_requests_and_responses(spec):
    def enum(name, field):
        return set(schema(spec, name)["properties"][field]["enum"])

    assert enum("User", "role") == enum("UserPatch", "role") == enum("UserPut", "role") == set(ROLES)
    assert enum("Job", "status") == set(STATUSES) and enum("Job", "kind") == set(KINDS)
    job_format = schema(spec, "Job")["properties"]["params"]["properties"]["format"]
    assert enum("ExportRequest", "format") == set(job_format["enum"]) == set(FORMATS)


def test_no_paging_parameter_has_a_default_that_conflicts_with_cursor(spec):
    for method, path, op in operations(spec):
        for parameter in op.get("parameters", []):
            parameter = resolve(spec, parameter)
            if parameter.get("name") == "page":
                assert "default" not in parameter["schema"], (method, path)


@pytest.fixture
def author(make_user, token):
    user = make_user()
    return user, {"Authorization": f"Bearer {token(user)}"}


def test_a_client_sending_the_documented_defaults_and_only_a_cursor_gets_the_next_page(client, spec, author):
    user, headers = author
    written = {client.post(f"{API}/posts", json={"title": f"Post {i}", "published": True},
                           headers=headers).get_json()["id"] for i in range(3)}
    for operation_id, path in (("listPosts", f"{API}/posts"), ("listUserPosts", f"{API}/users/{user.id}/posts")):
        # What a generated client sends when the caller gives nothing: every documented default.
        parameters = [resolve(spec, p) for p in by_id(spec, operation_id)["parameters"]]
        defaults = {p["name"]: p["schema"]["default"] for p in parameters
                    if p["in"] == "query" and "default" in p["schema"]}
        assert "page" not in defaults
        first = client.get(path, query_string={**defaults, "page_size": 2})
        assert first.status_code == 200 and len(first.get_json()) == 2
        second = client.get(path, query_string={**defaults, "page_size": 2, "cursor": first.headers["X-Next-Cursor"]})
        assert second.status_code == 200, second.get_json()
        assert len(second.get_json()) == 1 and "X-Next-Cursor" not in second.headers
        assert {post["id"] for post in first.get_json() + second.get_json()} == written


def test_a_202_without_a_job_answers_a_message(client, spec, make_user, token):
    unverified = make_user(verified=False)
    resend = client.post(f"{API}/auth/verify-email/resend", headers={"Authorization": f"Bearer {token(unverified)}"})
    responses = (resend,
                 client.post(f"{API}/auth/password-reset", json={"email": unverified.email}),
                 client.post(f"{API}/auth/password-reset", json={"email": "nobody@example.com"}))
    for response in responses:
        assert response.status_code == 202
        body = response.get_json()
        assert set(body) == {"message"} and body["message"].strip()
    for operation_id in ("resendVerificationEmail", "requestPasswordReset"):
        assert by_id(spec, operation_id)["responses"]["202"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Message"}


def assert_matches(spec, name, body):
    """Every required field is there, and only a nullable one is null (what a strict client relies on)."""
    declared = schema(spec, name)
    assert set(declared["required"]) <= set(body), (name, body)
    for field, value in body.items():
        prop = resolve(spec, declared["properties"][field])
        if value is None:
            assert prop.get("nullable"), (name, field)
        elif "enum" in prop:
            assert value in prop["enum"], (name, field, value)


def test_answers_carry_the_required_fields_and_null_only_where_declared(client, spec, make_user, login):
    admin, other = make_user(role="admin"), make_user()
    tokens = login(admin)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert_matches(spec, "Token", tokens)
    me = client.get(f"{API}/users/me", headers=headers).get_json()
    assert_matches(spec, "User", me)
    assert_matches(spec, "Profile", me["profile"])
    public = client.get(f"{API}/users/{admin.id}", headers={"Authorization": f"Bearer {login(other)['access_token']}"})
    assert "email" not in public.get_json()  # the public view: the private fields are optional
    assert_matches(spec, "User", public.get_json())
    post = client.post(f"{API}/posts", json={"title": "Hello"}, headers=headers)
    assert post.headers["Location"].endswith(f"/posts/{post.get_json()['id']}")
    assert_matches(spec, "Post", post.get_json())
    assert_matches(spec, "Author", post.get_json()["author"])
    for session in client.get(f"{API}/users/me/sessions", headers=headers).get_json():
        assert_matches(spec, "Session", session)
    job = client.post(f"{API}/jobs/user-export", json={"format": "json"}, headers=headers)
    assert job.status_code == 202 and job.headers["Location"] == f"{API}/jobs/{job.get_json()['id']}"
    assert_matches(spec, "Job", job.get_json())
    assert_matches(spec, "Job", client.get(job.headers["Location"], headers=headers).get_json())


def test_declared_errors_answer_the_error_body(client, spec, make_user, token):
    """The errors the issue found undeclared, as the server sends them, each declared on its operation."""
    unverified = make_user(verified=False)
    headers = {"Authorization": f"Bearer {token(unverified)}"}
    avatar = f"{API}/users/{unverified.id}/avatar"
    answers = [
        ("createPost", 403, client.post(f"{API}/posts", json={"title": "Not yet"}, headers=headers)),
        ("verifyEmail", 400, client.post(f"{API}/auth/verify-email", json={"token": "1.not-a-token"})),
        ("confirmPasswordReset", 400, client.post(f"{API}/auth/password-reset/confirm",
                                                  json={"token": "1.not-a-token", "new_password": "a long new password"})),
        ("uploadAvatar", 415, client.put(avatar, headers=headers, content_type="multipart/form-data",
                                         data={"file": (io.BytesIO(b"not an image"), "a.png")})),
        ("uploadAvatar", 413, client.put(avatar, headers=headers, content_type="multipart/form-data",
                                         data={"file": (io.BytesIO(b"\x89PNG" + b"0" * (5 * 1024 * 1024)), "a.png")})),
        ("createUser", 409, client.post(f"{API}/users", json={"name": "Again", "email": unverified.email,
                                                              "password": "a long enough password"})),
        ("getPost", 401, client.get(f"{API}/posts/1", headers={"Authorization": "Bearer not-a-token"})),
    ]
    for operation_id, status, response in answers:
        assert response.status_code == status, (operation_id, response.get_json())
        assert str(status) in by_id(spec, operation_id)["responses"], (operation_id, status)
        body = response.get_json()
        assert set(schema(spec, "Error")["required"]) <= set(body) and body["code"] == status
        assert set(body) <= set(schema(spec, "Error")["properties"])


LINTERS = {  # pinned: a new release with a new rule must not turn CI red by itself
    "spectral": ["@stoplight/spectral-cli@6.16.3", "spectral", "lint", "--ruleset", ".spectral.yaml",
                 "--fail-severity", "warn"],
    "redocly": ["@redocly/cli@2.77.0", "redocly", "lint", "--config", "redocly.yaml", "--max-problems", "200"],
}


@pytest.mark.parametrize("linter", sorted(LINTERS))
def test_spectral_and_redocly_find_nothing(spec, tmp_path, linter):
    """Spectral (`spectral:oas`) and Redocly (`recommended`): no error and no warning."""
    npx = shutil.which("npx")
    if npx is None:
        if os.environ.get("CI"):
            pytest.fail("npx is missing: CI must lint the OpenAPI document (install Node.js and npm)")
        pytest.skip("npx is not installed")
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(spec))
    package, binary, *args = LINTERS[linter]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([npx, "--yes", "--package", package, "--", binary, *args, str(document)],
                            cwd=root, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    if linter == "redocly":  # it exits 0 on warnings: read its summary
        assert "Woohoo! Your API description is valid." in output and "You have" not in output, output
    else:
        assert "No results with a severity of 'warn' or higher found!" in output, output
