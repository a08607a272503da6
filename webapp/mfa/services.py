"""Two-factor sign-in: enrol, confirm, finish a sign-in, turn it off. One unit of work each.

Every code guess for an account, at any of these steps, counts against RATELIMIT_MFA for that
account (wrong passwords when turning it off count as failed logins, as for a password change).
Managing TOTP needs a signed-in session: the permission policy refuses MANAGE_AUTH to personal
access tokens.
"""
from __future__ import annotations

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from webapp.auth import services as auth_services
from webapp.auth.permissions import Permission, require
from webapp.db import utcnow
from webapp.errors import Conflict, DomainError, Forbidden, Invalid, Unauthenticated
from webapp.guard import guard
from webapp.mfa import challenges, codes
from webapp.mfa.models import RecoveryCode, TotpCredential
from webapp.users.models import User

ALREADY_ON = "Two-factor sign-in is already on; turn it off first to enrol again."
NOT_ON = "Two-factor sign-in is not on."


def _limit_key(user_id: int) -> str:
    return f"user:{user_id}"


def _accept_code(session: Session, credential: TotpCredential, code: str) -> bool:
    """Accept `code` once: its step must be later than the last step accepted (shared by every host)."""
    seed = codes.unseal(credential.secret)
    step = codes.matched_step(seed, code) if seed else None
    if step is None:
        return False
    moved = session.execute(
        update(TotpCredential)
        .where(TotpCredential.user_id == credential.user_id, TotpCredential.last_step < step)
        .values(last_step=step)
    ).rowcount
    return moved == 1


def _spend_recovery_code(session: Session, user_id: int, code: str) -> bool:
    spent = session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.code_hash == codes.recovery_digest(user_id, code),
               RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())
    ).rowcount
    return spent == 1


def _check_limit(user_id: int) -> None:
    """A locked account is refused before its guess is even looked at."""
    guard().check("RATELIMIT_MFA", _limit_key(user_id))


def _wrong(user_id: int, failure: DomainError) -> None:
    """Count a wrong guess against the account, then refuse it."""
    guard().hit("RATELIMIT_MFA", _limit_key(user_id))
    raise failure


def _exactly_one(**values) -> None:
    given = [name for name, value in values.items() if value is not None]
    if len(given) != 1:
        message = f"Send exactly one of {' and '.join(values)}."
        raise Invalid(message, errors={name: [message] for name in values})


def enroll(session: Session, user: User) -> dict:
    """Start (or restart) enrolment with a new seed; TOTP stays off until a code confirms it."""
    require(user, Permission.MANAGE_AUTH, user)
    credential = session.get(TotpCredential, user.id)
    if credential is not None and credential.enabled_at is not None:
        raise Conflict(ALREADY_ON)
    if credential is None:
        credential = TotpCredential(user_id=user.id)
        session.add(credential)
    seed = codes.new_seed()
    credential.secret, credential.last_step, credential.created_at = codes.seal(seed), 0, utcnow()
    session.commit()
    return {"secret": seed, "otpauth_url": codes.provisioning_uri(seed, user.email)}


def confirm(session: Session, user: User, code) -> dict:
    """Turn TOTP on with a code from the app; answers the recovery codes, the only time they are shown."""
    require(user, Permission.MANAGE_AUTH, user)
    code = codes.normal_code(code)
    credential = session.get(TotpCredential, user.id)
    if credential is None:
        raise Conflict("No enrolment is in progress; start one first.")
    if credential.enabled_at is not None:
        raise Conflict(ALREADY_ON)
    _check_limit(user.id)
    if not _accept_code(session, credential, code):
        _wrong(user.id, Invalid("Validation failed.", errors={"code": [codes.WRONG_CODE]}))
    credential.enabled_at = utcnow()
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    recovery_codes = codes.new_recovery_codes()
    session.add_all(RecoveryCode(user_id=user.id,
                                 code_hash=codes.recovery_digest(user.id, codes.normal_recovery_code(text)))
                    for text in recovery_codes)
    session.commit()
    return {"recovery_codes": recovery_codes}


def verify(session: Session, mfa_token, *, code=None, recovery_code=None, user_agent: str = "",
           ip: str = "") -> dict:
    """Finish a sign-in: the login's mfa_token and a code (or a recovery code) → the token pair."""
    _exactly_one(code=code, recovery_code=recovery_code)
    if code is not None:
        code = codes.normal_code(code)
    else:
        recovery_code = codes.normal_recovery_code(recovery_code)
    challenge = challenges.live(session, mfa_token)
    user = session.get(User, challenge.user_id)
    if user is None or not user.is_active:
        raise Unauthenticated(challenges.SPENT)
    _check_limit(user.id)
    if code is not None:
        credential = session.get(TotpCredential, user.id)
        accepted = credential is not None and credential.enabled_at is not None and _accept_code(
            session, credential, code)
    else:
        accepted = _spend_recovery_code(session, user.id, recovery_code)
    if not accepted:
        _wrong(user.id, Unauthenticated(codes.WRONG_CODE))
    challenges.spend(session, challenge.id)
    return auth_services.sign_in(session, user, user_agent=user_agent, ip=ip)


def disable(session: Session, user: User, *, code=None, password=None) -> None:
    """Turn TOTP off with a current code or the password; the recovery codes go with it."""
    require(user, Permission.MANAGE_AUTH, user)
    _exactly_one(code=code, password=password)
    if code is not None:
        code = codes.normal_code(code)
    credential = session.get(TotpCredential, user.id)
    if credential is None or credential.enabled_at is None:
        raise Conflict(NOT_ON)
    if code is None:
        auth_services.prove_password(user, password, field="password")
    else:
        _check_limit(user.id)
        if not _accept_code(session, credential, code):
            _wrong(user.id, Forbidden(codes.WRONG_CODE, errors={"code": [codes.WRONG_CODE]}))
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    challenges.forget(session, user.id)
    session.delete(credential)
    session.commit()
