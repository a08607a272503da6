"""GraphiQL runs a subscription in a real headless Chromium against the realtime process.

The page comes from the API (a live werkzeug server over the test app), its WebSocket goes to a
`uvicorn webapp.realtime.asgi:app` process on the same database; Chromium is driven through the
DevTools protocol (the `websockets` library): type the subscription, press Run, and read the
result pane while posts are published.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import subprocess
import threading

import httpx
import pytest
import websockets
from werkzeug.serving import make_server

from tests.servers import kill_group, start_realtime  # noqa: F401  (a fixture)
from tests.test_browser import CHROMIUM

pytestmark = pytest.mark.browser
WAIT = 30  # seconds: a bound on waiting for what must come
SUBSCRIPTION = "subscription { postPublished { title } }"


@pytest.fixture
def page_url(app, monkeypatch, start_realtime):
    """The API serving GraphiQL, its subscriptions pointed at a realtime process on the same database."""
    realtime = start_realtime(DATABASE_URL=app.config["DATABASE_URL"])
    monkeypatch.setitem(app.config, "REALTIME_PUBLIC_URL", realtime.base)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/graphql"
    server.shutdown()


@pytest.fixture
def chromium(tmp_path):
    """A headless Chromium with its DevTools endpoint: yields the HTTP base of that endpoint."""
    if CHROMIUM is None:
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed but REQUIRE_BROWSER is set")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    process = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
         "--disable-background-networking", "--disable-component-update", "--remote-debugging-port=0",
         f"--user-data-dir={tmp_path / 'chromium'}", "about:blank"],
        stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        for line in process.stderr:
            found = re.search(r"DevTools listening on ws://([^/]+)/", line)
            if found:
                break
        else:
            raise AssertionError("chromium exited before opening its DevTools endpoint")
        yield f"http://{found.group(1)}"
    finally:
        kill_group(process)


class Page:
    """One tab, driven over the DevTools protocol."""

    def __init__(self, connection):
        self.connection, self.ids = connection, itertools.count(1)

    async def call(self, method: str, **params) -> dict:
        call_id = next(self.ids)
        await self.connection.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(await asyncio.wait_for(self.connection.recv(), WAIT))
            if message.get("id") == call_id:
                assert "error" not in message, message
                return message["result"]

    async def evaluate(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def wait_for(self, expression: str, *, tick=None):
        """Evaluate until truthy (calling `tick()` between tries); bounded by WAIT."""
        for _ in range(WAIT * 4):
            value = await self.evaluate(expression)
            if value:
                return value
            if tick is not None:
                tick()
            await asyncio.sleep(0.25)
        shown = await self.evaluate("document.body.innerText")
        raise AssertionError(f"never true in the page: {expression}\nthe page shows:\n{shown[-3000:]}")


def test_graphiql_runs_a_subscription_and_shows_a_post_published_meanwhile(page_url, chromium, client,
                                                                             make_user, token):
    author_token = token(make_user())
    published = itertools.count(1)

    def publish_post():
        title = f"Live from GraphiQL {next(published)}"
        response = client.post("/api/v1/posts", json={"title": title, "published": True},
                               headers={"Authorization": f"Bearer {author_token}"})
        assert response.status_code == 201, response.get_json()

    target = httpx.get(f"{chromium}/json/list").json()[0]

    async def scenario():
        async with websockets.connect(target["webSocketDebuggerUrl"], max_size=None) as connection:
            page = Page(connection)
            await page.call("Page.enable")
            await page.call("Page.navigate", url=page_url)
            editor = "document.querySelector('.graphiql-query-editor .CodeMirror')"
            await page.wait_for(f"!!{editor}")
            await page.evaluate(f"{editor}.CodeMirror.setValue({json.dumps(SUBSCRIPTION)})")
            await asyncio.sleep(1)  # GraphiQL parses the edit after a debounce; Run then sees a subscription
            await page.evaluate("document.querySelector('.graphiql-execute-button').click()")
            response = "(document.querySelector('.graphiql-response .CodeMirror') || {CodeMirror: " \
                       "{getValue: () => ''}}).CodeMirror.getValue()"
            shown = await page.wait_for(f"{response}.includes('Live from GraphiQL') && {response}",
                                        tick=publish_post)
            assert '"postPublished"' in shown and '"title": "Live from GraphiQL' in shown

    asyncio.run(scenario())
