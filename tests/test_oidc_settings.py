"""The single sign-on settings (conf/oidc.py): a mistake stops start-up, naming it and never a secret."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("value, says", [
    ("not json", "OIDC_PROVIDERS: not valid JSON"),
    ('{"name": "x"}', "must be a JSON list"),
    ('[{"name": "a", "issuer": "https://a.example", "client_id": "c"}]', "provider 1 needs client_secret"),
    ('[{"name": "A b", "issuer": "https://a.example", "client_id": "c", "client_secret": "s3cr3t"}]', "name must be"),
    ('[{"name": "a", "issuer": "http://a.example", "client_id": "c", "client_secret": "s3cr3t"}]', "https"),
    ('[{"name": "a", "issuer": "https://a.example", "client_id": "c", "client_secret": "s3cr3t"},'
     ' {"name": "a", "issuer": "https://b.example", "client_id": "c", "client_secret": "s3cr3t"}]', "used twice"),
])
def test_a_bad_provider_list_stops_start_up_with_what_is_wrong(monkeypatch, value, says):
    from conf.settings import ConfigError, load_config

    monkeypatch.setenv("OIDC_PROVIDERS", value)
    with pytest.raises(ConfigError) as refused:
        load_config("testing")
    assert says in str(refused.value) and "s3cr3t" not in str(refused.value)


def test_a_bad_redirect_uri_stops_start_up_and_good_ones_are_read(monkeypatch):
    from conf.settings import ConfigError, load_config

    monkeypatch.setenv("OIDC_REDIRECT_URIS", "https://app.example/done, http://evil.example/x")
    with pytest.raises(ConfigError, match="OIDC_REDIRECT_URIS: 'http://evil.example/x'"):
        load_config("testing")
    monkeypatch.setenv("OIDC_REDIRECT_URIS", "https://app.example/done, http://localhost:3000/cb,com.example.app:/cb")
    monkeypatch.setenv("OIDC_PROVIDERS", '[{"name": "corp", "issuer": "https://id.example", "client_id": "delta",'
                                         ' "client_secret": "s"}]')
    config = load_config("testing")
    assert config.OIDC_REDIRECT_URIS == ["https://app.example/done", "http://localhost:3000/cb", "com.example.app:/cb"]
    assert [p["name"] for p in config.OIDC_PROVIDERS] == ["corp"]
