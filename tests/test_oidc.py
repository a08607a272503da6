"""Single sign-on (PRODUCT.md "Identity") against a real OpenID provider: panva/oidc-provider under
Node.js on a free port (tests/oidc_provider/server.mjs), not a mock.

A `Browser` walks each sign-in with plain HTTP and no automatic redirects: Delta's authorize →
the provider's login page (signed in as a subject whose claims the test set) → its consent page →
Delta's callback → the app's redirect_uri with a one-time code → the exchange, through both doors.
Delta talks to the provider over real HTTP (discovery, token endpoint, JWKS, userinfo).
The provider and the browser are in tests/sso.py.
"""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import func, select, update

from tests.servers import free_port
from tests.sso import APP, CALLBACK, CLIENT_ID, CLIENT_SECRET, PROVIDERS, Browser, app_params
from tests.sso import oidc_provider  # noqa: F401  (the session's provider, a fixture)


@pytest.fixture
def sso(app, oidc_provider, monkeypatch):
    """Delta configured with the provider (twice: the second entry's client secret is wrong)."""
    monkeypatch.setitem(app.config, "OIDC_PROVIDERS", [
        {"name": name, "issuer": oidc_provider.issuer, "client_id": CLIENT_ID,
         "client_secret": CLIENT_SECRET if name == "test" else "not-the-secret"} for name in PROVIDERS])
    monkeypatch.setitem(app.config, "OIDC_REDIRECT_URIS", [APP, "com.example.app:/done"])
    return oidc_provider


@pytest.fixture
def browser(client, sso):
    return Browser(client, sso.issuer)


def count(query_db, model) -> int:
    return query_db(lambda s: s.scalar(select(func.count()).select_from(model)))


def identities(query_db):
    from webapp.oidc.models import UserIdentity

    return query_db(lambda s: [(i.provider, i.subject, i.user_id, i.email) for i in s.scalars(select(UserIdentity))])


# --- the flow ---------------------------------------------------------------------------------

def test_authorize_sends_the_browser_to_the_provider_with_pkce_state_and_nonce(browser, sso):
    response = browser.authorize()
    assert response.status_code == 302 and response.headers["Cache-Control"] == "no-store"
    url = urlsplit(response.headers["Location"])
    assert f"{url.scheme}://{url.netloc}" == sso.issuer  # found by discovery
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["scope"] == "openid email profile" and query["code_challenge_method"] == "S256"
    assert query["redirect_uri"] == CALLBACK.format("test")
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 20 and len(query["code_challenge"]) == 43


def test_a_new_user_is_signed_up_and_the_tokens_work_through_both_doors(browser, door, query_db):
    from webapp.users.models import User

    code = app_params(browser.sign_in("ada-sub", email="Ada@Example.com", email_verified=True,
                                      name="Ada Lovelace"))["code"]
    tokens = door.exchange_oidc_code(code)
    assert tokens.ok and tokens.data["token_type"] == "bearer", tokens.data
    me = door.me(tokens.data["access_token"])
    assert me.ok and me.data["email"] == "ada@example.com" and me.data["name"] == "Ada Lovelace"
    assert me.data["email_verified"] is not None
    user = query_db(lambda s: s.scalar(select(User).where(User.email == "ada@example.com")))
    assert user.password_hash is None  # no password: it signs in through the provider (or a reset)
    assert identities(query_db) == [("test", "ada-sub", user.id, "ada@example.com")]
    assert door.login("ada@example.com", "any password at all").status == "unauthenticated"


def test_the_exchange_answers_like_login_and_is_never_stored(browser, client):
    code = app_params(browser.sign_in("grace", email="grace@example.com", email_verified=True))["code"]
    response = client.post("/api/v1/auth/oidc/exchange", json={"code": code})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert set(response.get_json()) >= {"access_token", "refresh_token", "token_type", "expires_in"}
    me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {response.get_json()['access_token']}"})
    assert me.status_code == 200 and me.get_json()["email"] == "grace@example.com"
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": response.get_json()["refresh_token"]})
    assert refreshed.status_code == 200  # a session like a password login's


def test_the_linked_identity_is_found_again_whatever_email_it_now_has(browser, client, query_db):
    first = app_params(browser.sign_in("linus", email="linus@example.com", email_verified=True))["code"]
    user_id = client.get("/api/v1/users/me", headers={"Authorization": "Bearer " + client.post(
        "/api/v1/auth/oidc/exchange", json={"code": first}).get_json()["access_token"]}).get_json()["id"]
    again = app_params(browser.sign_in("linus", email="someone-else@example.com", email_verified=False))["code"]
    token = client.post("/api/v1/auth/oidc/exchange", json={"code": again}).get_json()["access_token"]
    assert client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}).get_json()["id"] == user_id
    assert len(identities(query_db)) == 1


def test_an_existing_account_is_linked_through_a_verified_email(browser, make_user, login, client, query_db):
    owner = make_user(email="joan@example.com")
    code = app_params(browser.sign_in("joan-at-idp", email="joan@example.com", email_verified=True))["code"]
    token = client.post("/api/v1/auth/oidc/exchange", json={"code": code}).get_json()["access_token"]
    assert client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}).get_json()["id"] == owner.id
    assert identities(query_db) == [("test", "joan-at-idp", owner.id, "joan@example.com")]
    assert login(owner)["access_token"]  # a verified account keeps its password


@pytest.mark.parametrize("verified", [False, None, "yes"])
def test_an_unverified_email_links_nothing_and_signs_nobody_up(browser, make_user, query_db, verified):
    from webapp.users.models import User

    make_user(email="taken@example.com")
    claims = {"email_verified": verified} if verified is not None else {}
    before = query_db(lambda s: [(u.id, u.email, u.password_hash, u.email_verified) for u in s.scalars(select(User))])
    for sub, email in (("intruder", "taken@example.com"), ("newcomer", "new@example.com")):
        params = app_params(browser.sign_in(sub, email=email, **claims))
        assert params["error"] == "email_not_verified" and "code" not in params
        assert "verified" in params["error_description"]
    after = query_db(lambda s: [(u.id, u.email, u.password_hash, u.email_verified) for u in s.scalars(select(User))])
    assert after == before and identities(query_db) == []


def test_linking_an_account_whose_email_was_never_verified_takes_it_from_whoever_made_it(
        browser, make_user, login, client):
    squatter = make_user(email="victim@example.com", verified=False)
    squatter_token = login(squatter)["access_token"]
    code = app_params(browser.sign_in("victim", email="victim@example.com", email_verified=True))["code"]
    token = client.post("/api/v1/auth/oidc/exchange", json={"code": code}).get_json()["access_token"]
    me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert me["id"] == squatter.id and me["email_verified"] is not None
    assert client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {squatter_token}"}).status_code == 401
    assert client.post("/api/v1/auth/login", json={"email": squatter.email, "password": squatter.password}
                       ).status_code == 401


def test_a_disabled_account_is_refused(browser, make_user, query_db):
    from webapp.oidc.models import OidcExchangeCode
    from webapp.users.models import User

    user = make_user(email="gone@example.com")
    query_db(lambda s: (s.execute(update(User).where(User.id == user.id).values(is_active=False)), s.commit()))
    params = app_params(browser.sign_in("gone", email="gone@example.com", email_verified=True))
    assert params["error"] == "account_disabled" and "code" not in params
    assert identities(query_db) == [] and count(query_db, OidcExchangeCode) == 0


def test_the_user_refusing_at_the_provider_comes_back_as_an_error(browser, client):
    started = browser.authorize()
    params = app_params(client.get(browser.at_provider(started.headers["Location"], "shy", abort=True)))
    assert params == {"error": "access_denied", "error_description": "The provider did not sign you in."}


# --- what is refused ---------------------------------------------------------------------------

def test_a_tampered_or_reused_state_is_refused_without_a_redirect(browser, client, query_db):
    from webapp.oidc.models import OidcExchangeCode

    browser.account("mallory", email="mallory@example.com", email_verified=True)
    callback = browser.at_provider(browser.authorize().headers["Location"], "mallory")
    parts = urlsplit(callback)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    tampered = client.get(f"{parts.path}?{urlencode({**query, 'state': query['state'][:-2] + 'xx'})}")
    assert tampered.status_code == 400 and "Location" not in tampered.headers
    assert tampered.get_json()["code"] == 400 and "start again" in tampered.get_json()["message"]
    assert app_params(client.get(callback))["code"]  # the genuine state still works, once
    reused = client.get(callback)
    assert reused.status_code == 400 and "Location" not in reused.headers
    assert count(query_db, OidcExchangeCode) == 1


def test_an_id_token_with_another_nonce_is_refused(browser, client, sso, query_db, caplog):
    """A code obtained with a nonce Delta did not choose (an injected authorization response)."""
    from webapp.oidc.models import OidcLoginState
    from webapp.users.models import User

    browser.account("eve", email="eve@example.com", email_verified=True)
    state = parse_qs(urlsplit(browser.authorize().headers["Location"]).query)["state"][0]
    verifier = query_db(lambda s: s.get(OidcLoginState, hashlib.sha256(state.encode()).hexdigest()).code_verifier)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    forged = f"{sso.issuer}/auth?" + urlencode({
        "client_id": CLIENT_ID, "response_type": "code", "scope": "openid email profile", "state": state,
        "redirect_uri": CALLBACK.format("test"), "nonce": "a-nonce-delta-never-issued",
        "code_challenge": challenge, "code_challenge_method": "S256"})
    params = app_params(client.get(browser.at_provider(forged, "eve")))
    assert params["error"] == "invalid_id_token" and "code" not in params
    assert "Invalid claim: 'nonce'" in caplog.text  # Authlib's check, and no other, refused it
    assert count(query_db, User) == 0


def test_a_wrong_client_secret_is_refused(browser, query_db):
    from webapp.users.models import User

    params = app_params(browser.sign_in("walt", provider="wrongsecret", email="walt@example.com", email_verified=True))
    assert params["error"] == "sign_in_failed" and "code" not in params
    assert count(query_db, User) == 0


@pytest.mark.parametrize("redirect_uri", [
    "https://evil.example/steal", APP + "/../evil", APP + "?next=/x", "http://127.0.0.1:3000/signed-in/", ""])
def test_a_redirect_uri_outside_the_allow_list_is_refused_with_no_redirect(browser, query_db, redirect_uri):
    from webapp.oidc.models import OidcLoginState

    response = browser.authorize(redirect_uri=redirect_uri)
    assert response.status_code == 422 and "Location" not in response.headers
    assert "redirect_uri" in response.get_json()["errors"]
    assert count(query_db, OidcLoginState) == 0


def test_an_app_scheme_in_the_allow_list_is_a_redirect_uri_too(browser):
    response = browser.authorize(redirect_uri="com.example.app:/done")
    assert response.status_code == 302


@pytest.mark.parametrize("issuer, why", [("http://localhost:{port}", "names another issuer"),
                                         ("http://127.0.0.1:{closed}", "ConnectionError")])
def test_a_provider_that_cannot_be_discovered_is_503_and_nothing_is_stored(client, app, sso, monkeypatch, query_db,
                                                                          caplog, issuer, why):
    """Another issuer in the discovery document (OpenID Discovery 4.3), or nobody listening."""
    from webapp.oidc.models import OidcLoginState

    port = urlsplit(sso.issuer).port
    monkeypatch.setitem(app.config, "OIDC_PROVIDERS", [{"name": "test", "client_id": CLIENT_ID, "client_secret": "s",
                                                         "issuer": issuer.format(port=port, closed=free_port())}])
    response = client.get("/api/v1/auth/oidc/test/authorize", query_string={"redirect_uri": APP})
    assert response.status_code == 503 and "Location" not in response.headers
    assert why in caplog.text and count(query_db, OidcLoginState) == 0


def test_an_unknown_provider_is_404(client, sso):
    for leg in ("authorize?redirect_uri=" + APP, "callback?state=x&code=y"):
        response = client.get(f"/api/v1/auth/oidc/nope/{leg}")
        assert response.status_code == 404 and response.get_json()["message"] == "No such sign-in provider."


def test_the_exchange_code_works_once_and_not_after_a_minute(browser, door, query_db):
    from webapp.oidc.models import OidcExchangeCode

    code = app_params(browser.sign_in("once", email="once@example.com", email_verified=True))["code"]
    assert door.exchange_oidc_code(code).ok
    spent, unknown = door.exchange_oidc_code(code), door.exchange_oidc_code("not-a-code")
    assert spent.status == unknown.status == "bad_input"
    late = app_params(browser.sign_in("once"))["code"]
    past = datetime(2000, 1, 1, tzinfo=timezone.utc)
    query_db(lambda s: (s.execute(update(OidcExchangeCode).values(expires_at=past)), s.commit()))
    assert door.exchange_oidc_code(late).status == "bad_input"
    assert count(query_db, OidcExchangeCode) == 0  # spent, expired ones too


def test_the_providers_are_listed_through_both_doors_without_secrets(sso, door):
    outcome = door.oidc_providers()
    assert outcome.ok and outcome.data == list(PROVIDERS)
    assert CLIENT_SECRET not in json.dumps(outcome.raw.get_json())


def test_a_user_with_two_factor_sign_in_on_gets_the_challenge_not_tokens(browser, make_user, token, client):
    import pyotp

    user = make_user(email="mfa@example.com")
    bearer = {"Authorization": f"Bearer {token(user)}"}
    secret = client.post("/api/v1/auth/mfa/totp", headers=bearer).get_json()["secret"]
    confirmed = client.post("/api/v1/auth/mfa/totp/confirm", headers=bearer, json={"code": pyotp.TOTP(secret).now()})
    assert confirmed.status_code == 200, confirmed.get_json()
    code = app_params(browser.sign_in("mfa-sub", email="mfa@example.com", email_verified=True))["code"]
    answer = client.post("/api/v1/auth/oidc/exchange", json={"code": code}).get_json()
    assert answer["mfa_required"] is True and answer["mfa_token"] and "access_token" not in answer
