"""`make sdk`'s clients, generated from a live server's /openapi.json, used against that server.

PRODUCT.md: "`make sdk` writes a typed Python client and TypeScript types generated from the live
document; both are exercised against a running server in the test suite." The generation is
sdk/generate.py's (what `make sdk` runs); the walk goes through the generated Python client only,
so a document that lies about a name, a body or an error shape fails here as it would for a client.
"""
from __future__ import annotations

import csv
import importlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from tests.servers import BIN, ROOT, Gunicorn, migrate, server_env, wait_for

# sdk/generate.py is a script (`make sdk` runs it), not a package: loaded by path, as what `make sdk` runs.
_spec = importlib.util.spec_from_file_location("sdk_generate", ROOT / "sdk" / "generate.py")
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)

PASSWORD = "correct horse battery staple 9"


def _flask(home, database_url, *args) -> str:
    result = subprocess.run([BIN / "flask", "--app", "wsgi", *args], cwd=ROOT, capture_output=True, text=True,
                            env=server_env(home, DATABASE_URL=database_url), timeout=60)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout.strip()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A gunicorn on the embedded default (SQLite, eager tasks), its document and the Python client."""
    home = tmp_path_factory.mktemp("sdk-server")
    database_url = f"sqlite:///{home / 'sdk.db'}"
    migrate(database_url, home)
    server = Gunicorn(home, DATABASE_URL=database_url).start()
    python_dir = None
    try:
        server.wait_ready()
        out = tmp_path_factory.mktemp("sdk")
        (out / "openapi.json").write_text(json.dumps(generate.fetch_document(server.base)))
        python_dir = generate.generate_python(out / "openapi.json", out)
        sys.path.insert(0, str(python_dir))
        yield {"base": server.base, "home": home, "db": database_url, "out": out,
               "flask": lambda *args: _flask(home, database_url, *args)}
    finally:
        server.stop()
        if python_dir is not None and str(python_dir) in sys.path:
            sys.path.remove(str(python_dir))
        for name in [name for name in sys.modules if name.split(".")[0] == generate.PACKAGE]:
            del sys.modules[name]


def _api(name: str):
    return importlib.import_module(f"{generate.PACKAGE}.{name}")


def test_typed_walk_with_the_generated_python_client(live):
    client_mod, models = _api("client"), _api("models")
    create_user = _api("api.users.create_user")
    verify_email = _api("api.accounts.verify_email")
    login = _api("api.auth.login")
    create_post, get_post = _api("api.posts.create_post"), _api("api.posts.get_post")
    list_posts = _api("api.posts.list_posts")
    request_user_export, get_job = _api("api.jobs.request_user_export"), _api("api.jobs.get_job")
    get_job_result, get_current_user = _api("api.jobs.get_job_result"), _api("api.users.get_current_user")
    anonymous = client_mod.Client(base_url=live["base"])

    # sign-up → verify (the token of the emailed link) → login
    email = f"walk-{uuid.uuid4().hex[:8]}@example.com"
    signup = create_user.sync_detailed(client=anonymous, body=models.Signup(name="Walker", email=email,
                                                                             password=PASSWORD))
    assert signup.status_code == 201 and isinstance(signup.parsed, models.User), signup.content
    assert signup.parsed.role == models.UserRole.USER
    token = live["flask"]("mail", "token", email)
    assert verify_email.sync_detailed(client=anonymous, body=models.TokenBody(token=token)).status_code == 204
    tokens = login.sync_detailed(client=anonymous, body=models.Login(email=email, password=PASSWORD))
    assert tokens.status_code == 200 and isinstance(tokens.parsed, models.LoginResult)
    me = client_mod.AuthenticatedClient(base_url=live["base"], token=tokens.parsed.access_token)
    current = get_current_user.sync_detailed(client=me)
    assert current.parsed.email == email and current.parsed.email_verified is not None

    # post → read it back → its ETag answers 304
    titles = [f"walk post {n}" for n in range(3)]
    ids = []
    for title in titles:
        made = create_post.sync_detailed(client=me, body=models.PostCreate(title=title, content="by the SDK",
                                                                           published=True))
        assert made.status_code == 201 and isinstance(made.parsed, models.Post), made.content
        ids.append(made.parsed.id)
    read = get_post.sync_detailed(ids[0], client=anonymous)
    assert read.status_code == 200 and read.parsed.title == titles[0] and read.parsed.author.name == "Walker"
    etag = read.headers["ETag"]
    assert get_post.sync_detailed(ids[0], client=anonymous, if_none_match=etag).status_code == 304

    # paging by cursor alone: the first page's X-Next-Cursor, then only `cursor`, until none is left
    page = list_posts.sync_detailed(client=anonymous, page_size=1)
    assert page.status_code == 200 and len(page.parsed) == 1
    seen = [post.id for post in page.parsed]
    cursor = page.headers.get("X-Next-Cursor")
    while cursor:
        page = list_posts.sync_detailed(client=anonymous, cursor=cursor)
        assert page.status_code == 200, page.content
        assert all(isinstance(post, models.Post) for post in page.parsed)
        seen += [post.id for post in page.parsed]
        cursor = page.headers.get("X-Next-Cursor")
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))

    # an admin's user export: the job, polled to the end, and its file
    admin_email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    live["flask"]("create-admin", "--email", admin_email, "--name", "Admin", "--password", PASSWORD)
    admin_tokens = login.sync_detailed(client=anonymous, body=models.Login(email=admin_email, password=PASSWORD))
    admin = client_mod.AuthenticatedClient(base_url=live["base"], token=admin_tokens.parsed.access_token)
    queued = request_user_export.sync_detailed(client=admin, body=models.ExportRequest(
        format_=models.ExportRequestFormat.CSV))
    assert queued.status_code == 202 and isinstance(queued.parsed, models.Job), queued.content
    job = wait_for(lambda: (lambda j: j if j.status in (models.JobStatus.SUCCEEDED, models.JobStatus.FAILED)
                            else None)(get_job.sync_detailed(queued.parsed.id, client=admin).parsed),
                   timeout=30, what="the export job")
    assert job.status == models.JobStatus.SUCCEEDED
    result = get_job_result.sync_detailed(job.id, client=admin)
    assert result.status_code == 200
    rows = list(csv.DictReader(io.StringIO(result.content.decode())))
    assert email in {row["email"] for row in rows}

    # each declared error parses as the generated Error, with the status as its code
    errors = {
        401: get_current_user.sync_detailed(client=anonymous),
        404: get_post.sync_detailed(10**9, client=anonymous),
        409: create_user.sync_detailed(client=anonymous, body=models.Signup(name="Again", email=email,
                                                                            password=PASSWORD)),
        422: create_user.sync_detailed(client=anonymous, body=models.Signup(name="Bad", email="not-an-address",
                                                                            password="short")),
        403: request_user_export.sync_detailed(client=me, body=models.ExportRequest()),
    }
    for status, response in errors.items():
        assert response.status_code == status, (status, response.content)
        assert isinstance(response.parsed, models.Error), (status, response.parsed)
        assert response.parsed.code == status and response.parsed.message
    assert "email" in errors[422].parsed.errors.additional_properties


def test_typescript_types_pass_tsc_strict_over_walk_ts(live):
    if shutil.which("npx") is None:
        if os.environ.get("CI"):
            pytest.fail("npx is missing in CI: the TypeScript types cannot be generated and checked")
        pytest.skip("npx (Node.js) is not installed")
    out = live["out"]
    types = generate.generate_typescript(out / "openapi.json", out)
    assert "export interface components" in types.read_text()
    generate.typecheck(out)  # raises with tsc's output when walk.ts does not type-check
