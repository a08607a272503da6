"""Who a provider says a user is, and the two short-lived secrets of a sign-in in flight.

Both secrets live in the database, not in a cookie or one process's memory, so whichever host
the browser comes back to can finish the sign-in, and each is spent by one DELETE: of two
requests racing with the same value, exactly one removes the row.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base, BigId, UTCDateTime, utcnow


class UserIdentity(Base):
    """A provider's account (`subject`, the ID token's `sub`) linked to a Delta user."""

    __tablename__ = "user_identities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))  # the verified address it was linked through
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("provider", "subject"),
        Index("ix_user_identities_user_id", "user_id"),
        {"sqlite_autoincrement": True},
    )


class OidcLoginState(Base):
    """An authorization request sent to a provider, found again by its `state` (stored hashed)."""

    __tablename__ = "oidc_login_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    redirect_uri: Mapped[str] = mapped_column(String(2048))  # the app's, from OIDC_REDIRECT_URIS
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_oidc_login_states_expires_at", "expires_at"), {"sqlite_autoincrement": True})


class OidcExchangeCode(Base):
    """The one-time code handed to the app, redeemed for a token pair (stored hashed)."""

    __tablename__ = "oidc_exchange_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_oidc_exchange_codes_user_id", "user_id"),
        Index("ix_oidc_exchange_codes_expires_at", "expires_at"),
        {"sqlite_autoincrement": True},  # the suite's rule for every table; no integer key here to use it
    )
