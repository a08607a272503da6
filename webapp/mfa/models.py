"""The rows of two-factor sign-in: a user's TOTP seed, their recovery codes, pending sign-ins."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base, BigId, UTCDateTime, utcnow


class TotpCredential(Base):
    """One per user: pending while `enabled_at` is null, on once a code has confirmed it.

    `secret` is the base32 seed encrypted with a key derived from SECRET_KEY (webapp/mfa/codes.py):
    a copy of the database alone cannot make codes. `last_step` is the replay store: the time step
    of the last code accepted; a code is accepted only for a later step, by one conditional UPDATE
    that every host shares (the database is the one store all hosts, and the embedded mode, have).
    """

    __tablename__ = "totp_credentials"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret: Mapped[str] = mapped_column(String(255))
    last_step: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = ({"sqlite_autoincrement": True},)


class RecoveryCode(Base):
    """A single-use recovery code, kept as its keyed digest only (never the code)."""

    __tablename__ = "mfa_recovery_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_mfa_recovery_codes_user_id_code_hash", "user_id", "code_hash", unique=True),
        {"sqlite_autoincrement": True},
    )


class MfaChallenge(Base):
    """A password login waiting for its second factor; `id` is the SHA-256 of the mfa_token.

    Spent (`used_at`) by the verification that signs in, with a conditional UPDATE: used once,
    on whichever host it is presented.
    """

    __tablename__ = "mfa_challenges"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_mfa_challenges_user_id", "user_id"), {"sqlite_autoincrement": True})
