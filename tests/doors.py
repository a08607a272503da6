"""The two doors as test clients: the same scenario runs through REST and through GraphQL.

Each call returns an `Outcome`: a door-neutral status (ok, unauthenticated, forbidden,
not_found, bad_input, conflict, rate_limited) and the data with snake_case keys, so a
test reads like the contract whichever door it goes through.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

REST_STATUS = {200: "ok", 201: "ok", 202: "ok", 204: "ok", 400: "bad_input", 401: "unauthenticated",
               403: "forbidden", 404: "not_found", 409: "conflict", 422: "bad_input", 429: "rate_limited"}
GRAPHQL_STATUS = {"UNAUTHENTICATED": "unauthenticated", "FORBIDDEN": "forbidden", "NOT_FOUND": "not_found",
                  "BAD_USER_INPUT": "bad_input", "CONFLICT": "conflict", "RATE_LIMITED": "rate_limited"}

USER_FIELDS = "id name email role isActive emailVerified createdAt updatedAt profile { firstName lastName bio avatarUrl }"
TOKEN_FIELDS = "accessToken refreshToken tokenType expiresIn"
JOB_FIELDS = "id kind ownerId status progress createdAt startedAt finishedAt error resultUrl"
PROFILE_FIELDS = "firstName lastName bio avatarUrl avatarThumbnails { size url }"
POST_FIELDS = "id title content published createdAt updatedAt author { id name }"


def snake(value):
    if isinstance(value, dict):
        return {re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): snake(item) for key, item in value.items()}
    if isinstance(value, list):
        return [snake(item) for item in value]
    return value


@dataclass
class Outcome:
    status: str
    data: object = None
    raw: object = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def bearer(token):
    return {"Authorization": f"Bearer {token}"} if token else {}


class RestDoor:
    name = "rest"

    def __init__(self, client):
        self.client = client

    def _call(self, method, path, token=None, **kwargs) -> Outcome:
        response = self.client.open(f"/api/v1{path}", method=method, headers=bearer(token), **kwargs)
        status = REST_STATUS.get(response.status_code, f"http_{response.status_code}")
        return Outcome(status, response.get_json(silent=True), response)

    def signup(self, name, email, password):
        return self._call("POST", "/users", json={"name": name, "email": email, "password": password})

    def login(self, email, password):
        return self._call("POST", "/auth/login", json={"email": email, "password": password})

    def refresh(self, refresh_token):
        return self._call("POST", "/auth/refresh", json={"refresh_token": refresh_token})

    def logout(self, token):
        return self._call("POST", "/auth/logout", token)

    def me(self, token):
        return self._call("GET", "/users/me", token)

    def get_user(self, token, user_id):
        return self._call("GET", f"/users/{user_id}", token)

    def list_users(self, token, skip=0, limit=20):
        # REST pages; the tests only use skip multiples of limit
        return self._call("GET", "/users", token, query_string={"page": skip // limit + 1, "page_size": limit})

    def search_users(self, token, q, limit=20):
        return self._call("GET", "/users", token, query_string={"q": q, "page_size": limit})

    def update_user(self, token, user_id, **changes):
        return self._call("PATCH", f"/users/{user_id}", token, json=changes)

    def delete_user(self, token, user_id):
        return self._call("DELETE", f"/users/{user_id}", token)

    def verify_email(self, token):
        return self._call("POST", "/auth/verify-email", json={"token": token})

    def resend_verification(self, token):
        return self._call("POST", "/auth/verify-email/resend", token)

    def request_password_reset(self, email):
        return self._call("POST", "/auth/password-reset", json={"email": email})

    def reset_password(self, token, new_password):
        return self._call("POST", "/auth/password-reset/confirm", json={"token": token, "new_password": new_password})

    def request_user_export(self, token, fmt="csv"):
        return self._call("POST", "/jobs/user-export", token, json={"format": fmt})

    def get_job(self, token, job_id):
        return self._call("GET", f"/jobs/{job_id}", token)
    # profiles and posts (issue 4)
    def get_profile(self, token, user_id):
        return self._call("GET", f"/users/{user_id}/profile", token)

    def update_profile(self, token, user_id, **changes):
        return self._call("PATCH", f"/users/{user_id}/profile", token, json=changes)

    def create_post(self, token, **fields):
        return self._call("POST", "/posts", token, json=fields)

    def get_post(self, token, post_id):
        return self._call("GET", f"/posts/{post_id}", token)

    def list_posts(self, token=None, skip=0, limit=20, author_id=None):
        query = {"page": skip // limit + 1, "page_size": limit}
        if author_id is not None:
            query["author_id"] = author_id
        return self._call("GET", "/posts", token, query_string=query)

    def user_posts(self, token, user_id, limit=20):
        return self._call("GET", f"/users/{user_id}/posts", token, query_string={"page_size": limit})

    def update_post(self, token, post_id, **changes):
        return self._call("PATCH", f"/posts/{post_id}", token, json=changes)

    def delete_post(self, token, post_id):
        return self._call("DELETE", f"/posts/{post_id}", token)
    # single sign-on (issue 21)
    def oidc_providers(self):
        outcome = self._call("GET", "/auth/oidc")
        return Outcome(outcome.status, outcome.data["providers"], outcome.raw) if outcome.ok else outcome

    def exchange_oidc_code(self, code):
        return self._call("POST", "/auth/oidc/exchange", json={"code": code})


class GraphQLDoor:
    name = "graphql"

    def __init__(self, client):
        self.client = client

    def query(self, document, variables=None, token=None, key=None) -> Outcome:
        response = self.client.post("/graphql", json={"query": document, "variables": variables or {}},
                                    headers=bearer(token))
        body = response.get_json(silent=True) or {}
        if body.get("errors"):
            code = body["errors"][0].get("extensions", {}).get("code", "")
            return Outcome(GRAPHQL_STATUS.get(code, code.lower() or "error"), body["errors"], response)
        data = (body.get("data") or {})
        return Outcome("ok", snake(data.get(key) if key else data), response)

    def signup(self, name, email, password):
        return self.query(f"mutation($i: CreateUserInput!) {{ createUser(input: $i) {{ {USER_FIELDS} }} }}",
                          {"i": {"name": name, "email": email, "password": password}}, key="createUser")

    def login(self, email, password):
        return self.query(f"mutation($e: String!, $p: String!) {{ login(email: $e, password: $p) {{ {TOKEN_FIELDS} }} }}",
                          {"e": email, "p": password}, key="login")

    def refresh(self, refresh_token):
        return self.query(f"mutation($t: String!) {{ refreshToken(refreshToken: $t) {{ {TOKEN_FIELDS} }} }}",
                          {"t": refresh_token}, key="refreshToken")

    def logout(self, token):
        return self.query("mutation { logout }", token=token, key="logout")

    def me(self, token):
        return self.query(f"{{ me {{ {USER_FIELDS} }} }}", token=token, key="me")

    def get_user(self, token, user_id):
        return self.query(f"query($id: Int!) {{ user(id: $id) {{ {USER_FIELDS} }} }}", {"id": user_id},
                          token=token, key="user")

    def list_users(self, token, skip=0, limit=20):
        return self.query(f"query($s: Int!, $l: Int!) {{ users(skip: $s, limit: $l) {{ {USER_FIELDS} }} }}",
                          {"s": skip, "l": limit}, token=token, key="users")

    def search_users(self, token, q, limit=20):
        return self.query(f"query($q: String!, $l: Int!) {{ searchUsers(query: $q, limit: $l) {{ {USER_FIELDS} }} }}",
                          {"q": q, "l": limit}, token=token, key="searchUsers")

    def update_user(self, token, user_id, **changes):
        camel = {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): v for k, v in changes.items()}
        return self.query(f"mutation($id: Int!, $i: UpdateUserInput!) {{ updateUser(id: $id, input: $i) {{ {USER_FIELDS} }} }}",
                          {"id": user_id, "i": camel}, token=token, key="updateUser")

    def delete_user(self, token, user_id):
        return self.query("mutation($id: Int!) { deleteUser(id: $id) }", {"id": user_id}, token=token,
                          key="deleteUser")

    def verify_email(self, token):
        return self.query("mutation($t: String!) { verifyEmail(token: $t) }", {"t": token}, key="verifyEmail")

    def resend_verification(self, token):
        return self.query("mutation { resendVerificationEmail }", token=token, key="resendVerificationEmail")

    def request_password_reset(self, email):
        return self.query("mutation($e: String!) { requestPasswordReset(email: $e) }", {"e": email},
                          key="requestPasswordReset")

    def reset_password(self, token, new_password):
        return self.query("mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }",
                          {"t": token, "p": new_password}, key="resetPassword")

    def request_user_export(self, token, fmt="csv"):
        return self.query(f"mutation($f: ExportFormat!) {{ requestUserExport(format: $f) {{ {JOB_FIELDS} }} }}",
                          {"f": fmt}, token=token, key="requestUserExport")

    def get_job(self, token, job_id):
        return self.query(f"query($id: Int!) {{ job(id: $id) {{ {JOB_FIELDS} }} }}", {"id": job_id},
                          token=token, key="job")
    # profiles and posts (issue 4)
    def get_profile(self, token, user_id):
        outcome = self.query(f"query($id: Int!) {{ user(id: $id) {{ profile {{ {PROFILE_FIELDS} }} }} }}",
                             {"id": user_id}, token=token, key="user")
        return Outcome(outcome.status, outcome.data["profile"], outcome.raw) if outcome.ok else outcome

    def update_profile(self, token, user_id, **changes):
        camel = {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): v for k, v in changes.items()}
        return self.query(f"mutation($id: Int!, $i: UpdateProfileInput!) {{ updateProfile(userId: $id, input: $i) "
                          f"{{ {PROFILE_FIELDS} }} }}", {"id": user_id, "i": camel}, token=token, key="updateProfile")

    def create_post(self, token, **fields):
        return self.query(f"mutation($i: CreatePostInput!) {{ createPost(input: $i) {{ {POST_FIELDS} }} }}",
                          {"i": fields}, token=token, key="createPost")

    def get_post(self, token, post_id):
        return self.query(f"query($id: Int!) {{ post(id: $id) {{ {POST_FIELDS} }} }}", {"id": post_id},
                          token=token, key="post")

    def list_posts(self, token=None, skip=0, limit=20, author_id=None):
        return self.query(f"query($s: Int!, $l: Int!, $a: Int) {{ posts(skip: $s, limit: $l, authorId: $a) "
                          f"{{ {POST_FIELDS} }} }}", {"s": skip, "l": limit, "a": author_id}, token=token, key="posts")

    def user_posts(self, token, user_id, limit=20):
        outcome = self.query(f"query($id: Int!, $l: Int!) {{ user(id: $id) {{ posts(limit: $l) {{ {POST_FIELDS} }} }} }}",
                             {"id": user_id, "l": limit}, token=token, key="user")
        return Outcome(outcome.status, outcome.data["posts"], outcome.raw) if outcome.ok else outcome

    def update_post(self, token, post_id, **changes):
        return self.query(f"mutation($id: Int!, $i: UpdatePostInput!) {{ updatePost(id: $id, input: $i) "
                          f"{{ {POST_FIELDS} }} }}", {"id": post_id, "i": changes}, token=token, key="updatePost")

    def delete_post(self, token, post_id):
        return self.query("mutation($id: Int!) { deletePost(id: $id) }", {"id": post_id}, token=token,
                          key="deletePost")
    # single sign-on (issue 21)
    def oidc_providers(self):
        return self.query("{ oidcProviders }", key="oidcProviders")

    def exchange_oidc_code(self, code):
        return self.query(f"mutation($c: String!) {{ exchangeOidcCode(code: $c) {{ {TOKEN_FIELDS} }} }}", {"c": code},
                          key="exchangeOidcCode")


DOORS = {"rest": RestDoor, "graphql": GraphQLDoor}
