"""A signed-in session: one refresh-token family, revocable at once on every host."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base, BigId, UTCDateTime, utcnow


class AuthSession(Base):
    """`current_jti` is the one refresh token of the family that may still be spent.

    A validly signed refresh token of this family whose jti is not `current_jti` has
    been spent already: presenting it is reuse, and revokes the family. Access tokens
    carry the session id, so revoking the row stops them too.
    """

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    current_jti: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    user_agent: Mapped[str] = mapped_column(String(255), default="", server_default="")
    ip: Mapped[str] = mapped_column(String(45), default="", server_default="")

    __table_args__ = (
        Index("ix_auth_sessions_user_id", "user_id"),
        Index("ix_auth_sessions_expires_at", "expires_at"),
        {"sqlite_autoincrement": True},
    )

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and self.expires_at > utcnow()
