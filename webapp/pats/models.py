"""A personal access token: found by its public id part, proven by the SHA-256 of its secret."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base, BigId, UTCDateTime, utcnow


class PersonalAccessToken(Base):
    """`dlt_pat_<lookup>_<secret>`: `lookup` finds the row by a unique index, `secret_hash` proves it.

    The secret is 32 random bytes, so a plain SHA-256 is enough (nothing to brute-force, no slow
    hash on every request); the token itself is shown once, at creation, and never stored.
    Revoking deletes the row: the next request with the token finds nothing, on every host.
    """

    __tablename__ = "personal_access_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    lookup: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[str] = mapped_column(String(32))  # space-separated: "read" or "read write"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_personal_access_tokens_user_id", "user_id"),
        {"sqlite_autoincrement": True},
    )

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()
