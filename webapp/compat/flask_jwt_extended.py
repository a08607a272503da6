"""flask-jwt-extended (setup.cfg: <4.8): each token decoded once per request instead of four times.

Replaces `JWTManager._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)`, which
`flask_jwt_extended.decode_token` and the view's `verify_jwt_in_request` call; decodes with the
library's own `tokens._decode_jwt(**options)`, so its checks (algorithms, audience, issuer,
leeway, `sub`, CSRF) stay the library's.

The stock `_decode_jwt_from_config` decodes the token without verification (claims, then
header) to ask a decode-key callback for the secret, then decodes it again, verified. Delta
signs with one static secret, so the first two passes are pure cost on every request
(PyJWT 2.15 checks every base64 character in Python: ~0.15 ms a pass, measured). The rate
limiter keys on the token's subject before the view verifies it: the verified claims are kept
on the request (`g`), so the view's check reuses them. Every token must carry `exp` (PyJWT
accepts one without it, valid for ever).
"""
from __future__ import annotations

from flask import g, has_request_context
from flask_jwt_extended import JWTManager
from flask_jwt_extended.config import config
from flask_jwt_extended.exceptions import JWTDecodeError
from flask_jwt_extended.tokens import _decode_jwt
from jwt import ExpiredSignatureError, get_unverified_header


class SingleKeyJWTManager(JWTManager):
    def _decode_jwt_from_config(self, encoded_token: str, csrf_value=None, allow_expired: bool = False) -> dict:
        if not has_request_context():
            return self._decode_once(encoded_token, csrf_value, allow_expired)
        decoded = g.setdefault("delta_decoded_jwts", {})
        key = (encoded_token, csrf_value, allow_expired)
        if key not in decoded:
            decoded[key] = self._decode_once(encoded_token, csrf_value, allow_expired)
        return decoded[key]

    @staticmethod
    def _decode_once(encoded_token: str, csrf_value, allow_expired: bool) -> dict:
        kwargs = {
            "algorithms": config.decode_algorithms,
            "audience": config.decode_audience,
            "csrf_value": csrf_value,
            "encoded_token": encoded_token,
            "identity_claim_key": config.identity_claim_key,
            "issuer": config.decode_issuer,
            "leeway": config.leeway,
            "secret": config.decode_key,
            "verify_aud": config.decode_audience is not None,
            "verify_sub": config.verify_sub,
        }
        try:
            claims = _decode_jwt(**kwargs, allow_expired=allow_expired)
        except ExpiredSignatureError as exc:  # what the stock manager attaches for the expired loader
            exc.jwt_header = get_unverified_header(encoded_token)  # type: ignore[attr-defined]
            exc.jwt_data = _decode_jwt(**kwargs, allow_expired=True)  # type: ignore[attr-defined]
            raise
        if not isinstance(claims.get("exp"), (int, float)):
            # PyJWT checks `exp` only when present: a token without one (signed with a leaked or
            # test secret, or minted by a buggy tool) would never expire. Delta issues none.
            raise JWTDecodeError("Missing claim: exp")
        return claims
