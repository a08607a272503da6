"""Input rules shared by both doors: services call these, schemas document the same limits."""
from __future__ import annotations

import unicodedata
from functools import lru_cache

from marshmallow import ValidationError, validate

from webapp.errors import Invalid

NAME_MAX = 100
EMAIL_MAX = 254
PASSWORD_MIN = 8
PASSWORD_MAX = 128
TEXT_MAX = 10_000

_email = validate.Email(error="Not a valid email address.")


def collect(checks: dict) -> None:
    """Run `{field: callable}` checks and raise one Invalid holding every field's message."""
    errors = {}
    for field, check in checks.items():
        try:
            check()
        except Invalid as exc:
            errors[field] = [exc.message]
    if errors:
        raise Invalid("Validation failed.", errors=errors)


def text(value, *, field: str = "value", min_len: int = 0, max_len: int = TEXT_MAX) -> str:
    if not isinstance(value, str):
        raise Invalid("Not a valid string.")
    if "\x00" in value:
        raise Invalid("Must not contain NUL characters.")
    if len(value) < min_len or len(value) > max_len:
        if min_len and len(value) < min_len:
            raise Invalid(f"Length must be between {min_len} and {max_len}.")
        raise Invalid(f"Longer than maximum length {max_len}.")
    return value


def name(value) -> str:
    value = text(value, max_len=NAME_MAX).strip()
    if not value:
        raise Invalid("Must not be blank.")
    return value


def email(value) -> str:
    """Normalise an address: NFKC, trimmed and lower-cased, so one mailbox is one account.

    NFKC folds compatibility forms (a fullwidth `ａlice@` is `alice@`), so a look-alike spelling
    neither signs up a second account nor misses the first at login, reset or import.
    """
    value = unicodedata.normalize("NFKC", text(value, max_len=EMAIL_MAX)).strip().lower()
    if len(value) > EMAIL_MAX:  # NFKC can lengthen a string
        raise Invalid(f"Longer than maximum length {EMAIL_MAX}.")
    try:
        _email(value)
    except ValidationError:
        raise Invalid("Not a valid email address.") from None
    return value


def password(value) -> str:
    value = text(value, max_len=10 * PASSWORD_MAX)
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise Invalid(f"Length must be between {PASSWORD_MIN} and {PASSWORD_MAX}.")
    if value.lower() in _common_passwords():
        raise Invalid("This password is too common; choose another.")
    return value


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords (the list zxcvbn ships)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])
