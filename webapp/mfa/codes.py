"""The cryptography of two-factor sign-in, in one place.

- The TOTP seed is stored encrypted (Fernet) under a key derived from SECRET_KEY: a copy of the
  database alone cannot make codes. (The seed itself cannot be hashed: checking a code needs it.)
- Codes are what every authenticator app makes by default: 6 digits, 30-second steps, SHA-1.
  A code matches within ±1 step of the server's clock; the match answers the step, so the caller
  can refuse that step (and every earlier one) from then on.
- Recovery codes carry 60 random bits and are kept as HMAC-SHA256(SECRET_KEY, user id and code).
  A keyed fast digest, not argon2: random codes leave no dictionary to try, so a slow hash would
  buy nothing against a stolen table that lacks the key, and a digest that comes out the same
  every time lets a check be one indexed, conditional UPDATE instead of ten argon2 runs.
Rotating SECRET_KEY therefore turns two-factor sign-in off for everyone who has it (README).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from functools import lru_cache

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from flask import current_app

from webapp.errors import Invalid

DIGITS = 6
STEP_SECONDS = 30
SKEW_STEPS = 1
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32: no i, l, o, u
RECOVERY_LENGTH = 12  # 60 bits, written as three groups of four
WRONG_CODE = "The code is wrong or was already used."

log = logging.getLogger("webapp.mfa")


def _derived_key(purpose: str) -> bytes:
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, f"delta:mfa:{purpose}".encode(), hashlib.sha256).digest()


@lru_cache(maxsize=4)
def _fernet(key: bytes) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(key))


def new_seed() -> str:
    return pyotp.random_base32()


def seal(seed: str) -> str:
    """The seed as stored: encrypted and authenticated."""
    return _fernet(_derived_key("seed")).encrypt(seed.encode()).decode()


def unseal(sealed: str) -> str | None:
    """The seed, or None when SECRET_KEY has changed since it was sealed (no code can match then)."""
    try:
        return _fernet(_derived_key("seed")).decrypt(sealed.encode()).decode()
    except InvalidToken:
        log.warning("a TOTP seed cannot be decrypted: SECRET_KEY changed since it was stored")
        return None


def provisioning_uri(seed: str, account: str) -> str:
    """The otpauth:// URL an authenticator app reads (from a QR code of it)."""
    issuer = current_app.config["MFA_ISSUER"]
    return pyotp.TOTP(seed, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(name=account, issuer_name=issuer)


def normal_code(code) -> str:
    """Six ASCII digits, else Invalid: a 422, not a guess."""
    if not isinstance(code, str) or len(code) != DIGITS or not code.isascii() or not code.isdigit():
        raise Invalid("Validation failed.", errors={"code": [f"Must be {DIGITS} digits."]})
    return code


def matched_step(seed: str, code: str, now: float | None = None) -> int | None:
    """The time step whose code `code` is, within ±SKEW_STEPS of now, else None.

    Every candidate is compared in constant time, so the answer's timing says nothing of which
    step matched.
    """
    totp = pyotp.TOTP(seed, digits=DIGITS, interval=STEP_SECONDS)
    current = totp.timecode(time.time() if now is None else now)
    matched = None
    for step in range(current - SKEW_STEPS, current + SKEW_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            matched = step
    return matched


def new_recovery_codes() -> list[str]:
    codes = ("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
             for _ in range(RECOVERY_CODE_COUNT))
    return [f"{code[:4]}-{code[4:8]}-{code[8:]}" for code in codes]


def normal_recovery_code(code) -> str:
    """Lower-cased, without the dashes and spaces people type; Invalid when it cannot be one."""
    cleaned = code.replace("-", "").replace(" ", "").lower() if isinstance(code, str) else ""
    if len(cleaned) != RECOVERY_LENGTH or any(char not in RECOVERY_ALPHABET for char in cleaned):
        raise Invalid("Validation failed.", errors={"recovery_code": ["Not a recovery code."]})
    return cleaned


def recovery_digest(user_id: int, code: str) -> str:
    """What is stored for a recovery code (give it `normal_recovery_code`'s form)."""
    return hmac.new(_derived_key("recovery"), f"{user_id}:{code}".encode(), hashlib.sha256).hexdigest()


def token_digest(token: str) -> str:
    """The stored id of an mfa_token: 256 random bits need no key and no slow hash."""
    return hashlib.sha256(token.encode()).hexdigest()
