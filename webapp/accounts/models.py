"""Single-use account tokens: only a hash is stored, never the token itself."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base, BigId, UTCDateTime, utcnow

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"
SET_PASSWORD = "set_password"  # an imported user's first password: the reset flow, longer-lived


class AccountToken(Base):
    """The token is `<id>.<HMAC(secret, purpose:id:nonce)>`; `token_hash` is its SHA-256.

    A worker can rebuild the token from the row and the app secret, so tasks carry only the
    row id and a redelivered task mails the same token again rather than a new one.
    """

    __tablename__ = "account_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16))
    email: Mapped[str] = mapped_column(String(254))  # the address it was issued for
    nonce: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), default="")
    request_key: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_account_tokens_user_id", "user_id"),
        Index("ix_account_tokens_expires_at", "expires_at"),
        {"sqlite_autoincrement": True},
    )
