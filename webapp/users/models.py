"""User and Profile: the account and the public face created with it."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.db import Base, BigId, UTCDateTime, utcnow

ROLES = ("user", "admin")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    role: Mapped[str] = mapped_column(String(16), default="user", server_default="user")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    email_verified: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    profile: Mapped["Profile"] = relationship(
        back_populates="user", uselist=False, cascade="all, delete-orphan", lazy="joined",
        passive_deletes=True,
    )

    __table_args__ = (
        Index("ix_users_name", "name"),
        Index("ix_users_created_at", "created_at"),
        Index("ix_users_role", "role"),
        {"sqlite_autoincrement": True},
    )

    def cache_namespaces(self) -> set[str]:
        """What a change to this row makes stale (see webapp/caching.py).

        Deleting a user deletes their posts in the database (ON DELETE CASCADE), out of the
        unit of work's sight: the cached post totals go stale with it.
        """
        # Post reads embed the author's name, and deleting a user deletes their posts in the
        # database: any user write makes cached post reads stale too.
        return {f"user:{self.id}", "posts"}

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def __repr__(self) -> str:
        return f"<User {self.id}>"


class Profile(Base):
    __tablename__ = "profiles"

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    first_name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    last_name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    bio: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Storage key of the re-encoded original (generated, never the client's name); thumbnails
    # lists the sizes the background task has made, e.g. "64,256".
    avatar_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    avatar_thumbnails: Mapped[str] = mapped_column(String(50), default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(back_populates="profile")

    __table_args__ = {"sqlite_autoincrement": True}

    def cache_namespaces(self) -> set[str]:
        return {f"user:{self.user_id}"}
