"""/metrics in production: only METRICS_ALLOW addresses or `Bearer <METRICS_TOKEN>`; others get 404.

Each test builds an app from ProductionConfig (on the suite's database) and calls it as a
caller from a given address; outside production /metrics stays open.
"""
from __future__ import annotations

import pytest

from conf.settings import ConfigError, ProductionConfig, load_config
from webapp import create_app

OUTSIDE = "203.0.113.5"
TOKEN = "scrape-" + "t" * 40


@pytest.fixture
def production(app, monkeypatch):
    """`production(**settings)` → a test client of an app built with ProductionConfig."""
    monkeypatch.setenv("SECRET_KEY", "s" * 64)
    monkeypatch.setenv("JWT_SECRET_KEY", "j" * 64)

    def build(**settings):
        config = ProductionConfig().override(
            INSTANCE_PATH=app.config["INSTANCE_PATH"], MEDIA_ROOT=app.config["MEDIA_ROOT"],
            DATABASE_URL=app.config["DATABASE_URL"], REDIS_URL="", CELERY_BROKER_URL="", **settings)
        config.check()
        return create_app(config).test_client()

    return build


def scrape(client, address=OUTSIDE, headers=None):
    return client.get("/metrics", headers=headers or {}, environ_base={"REMOTE_ADDR": address})


def shows_metrics(response) -> bool:
    return response.status_code == 200 and b"delta_http_requests_total" in response.data


def hidden(client, response) -> bool:
    """404, and the very answer an unknown path gets: nothing tells that /metrics exists."""
    unknown = client.get("/no-such-path")
    return response.status_code == 404 and response.get_json()["message"] == unknown.get_json()["message"] \
        and response.get_json()["code"] == 404


def test_by_default_only_loopback_may_scrape(production):
    client = production()
    assert shows_metrics(scrape(client, "127.0.0.1"))
    assert shows_metrics(scrape(client, "::1"))
    assert hidden(client, scrape(client, OUTSIDE))
    assert hidden(client, scrape(client, "10.0.0.1"))


def test_metrics_allow_takes_addresses_and_networks(production):
    client = production(METRICS_ALLOW=["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"])
    assert shows_metrics(scrape(client, "10.20.30.40"))
    assert shows_metrics(scrape(client, "2001:db8::1"))
    assert shows_metrics(scrape(client, "192.0.2.7"))
    assert hidden(client, scrape(client, "192.0.2.8"))
    assert hidden(client, scrape(client, "127.0.0.1"))  # loopback is only a default


def test_the_token_opens_metrics_from_anywhere(production):
    client = production(METRICS_TOKEN=TOKEN)
    assert shows_metrics(scrape(client, headers={"Authorization": f"Bearer {TOKEN}"}))
    assert shows_metrics(scrape(client, headers={"Authorization": f"bearer  {TOKEN} "}))
    for wrong in (f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", TOKEN):
        assert hidden(client, scrape(client, headers={"Authorization": wrong})), wrong


def test_no_token_configured_means_no_token_access(production):
    client = production(METRICS_TOKEN="")
    assert hidden(client, scrape(client, headers={"Authorization": "Bearer "}))
    assert hidden(client, scrape(client, headers={"Authorization": "Bearer x"}))


def test_behind_a_trusted_proxy_the_forwarded_client_counts(production):
    client = production(TRUSTED_PROXIES=1)
    via_proxy = {"X-Forwarded-For": OUTSIDE}
    assert hidden(client, scrape(client, "127.0.0.1", via_proxy))
    # A client cannot claim loopback: the proxy appends the address it saw, and that one counts.
    assert hidden(client, scrape(client, "127.0.0.1", {"X-Forwarded-For": f"127.0.0.1, {OUTSIDE}"}))
    assert shows_metrics(scrape(client, "127.0.0.1", {"X-Forwarded-For": "127.0.0.1"}))
    assert shows_metrics(scrape(client, "127.0.0.1"))  # Prometheus on the host, past the proxy


def test_forwarded_requests_from_an_untrusted_proxy_are_not_local(production):
    """Without TRUSTED_PROXIES, a proxy on the same host makes every caller look like loopback."""
    client = production(TRUSTED_PROXIES=0)
    for header in ({"X-Forwarded-For": OUTSIDE}, {"Forwarded": f"for={OUTSIDE}"}):
        assert hidden(client, scrape(client, "127.0.0.1", header))
    token_client = production(TRUSTED_PROXIES=0, METRICS_TOKEN=TOKEN)
    assert shows_metrics(scrape(token_client, "127.0.0.1", {"X-Forwarded-For": OUTSIDE,
                                                            "Authorization": f"Bearer {TOKEN}"}))


def test_outside_production_metrics_stay_open(client):
    assert shows_metrics(scrape(client, OUTSIDE))


def test_metrics_allow_is_read_from_the_environment_and_checked(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "s" * 64)
    monkeypatch.setenv("JWT_SECRET_KEY", "j" * 64)
    monkeypatch.setenv("METRICS_ALLOW", "10.1.0.0/16, ::1")
    monkeypatch.setenv("METRICS_TOKEN", TOKEN)
    config = load_config("production")
    assert config.METRICS_ALLOW == ["10.1.0.0/16", "::1"] and config.METRICS_TOKEN == TOKEN
    monkeypatch.setenv("METRICS_ALLOW", "10.1.0.0/16, not-an-address")
    with pytest.raises(ConfigError, match="METRICS_ALLOW"):
        load_config("production")
    monkeypatch.delenv("METRICS_ALLOW")
    assert load_config("production").METRICS_ALLOW == ["127.0.0.1", "::1"]


def test_the_token_never_reaches_the_log(production, caplog):
    import logging

    client = production(METRICS_TOKEN=TOKEN)
    with caplog.at_level(logging.DEBUG):
        scrape(client, headers={"Authorization": f"Bearer {TOKEN}"})
        scrape(client, headers={"Authorization": "Bearer wrong"})
    assert TOKEN not in caplog.text
