"""Post: what a user writes; a draft until published."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.db import Base, BigId, UTCDateTime, utcnow
from webapp.users.models import User


class Post(Base):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    author_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text, default="", server_default="")
    published: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # The database deletes a user's posts (ON DELETE CASCADE); loading is always explicit.
    author: Mapped[User] = relationship(lazy="raise_on_sql", passive_deletes=True)

    # One index per filter + sort the API offers (id breaks ties, so it ends each key).
    # The PostgreSQL trigram index for `q` lives in migration 0003 only (see migrations/env.py).
    __table_args__ = (
        Index("ix_posts_published_created_at", "published", "created_at", "id"),
        Index("ix_posts_author_id_created_at", "author_id", "created_at", "id"),
        Index("ix_posts_created_at", "created_at", "id"),
        Index("ix_posts_title", "title", "id"),
        Index("ix_posts_updated_at", "updated_at", "id"),
        {"sqlite_autoincrement": True},
    )

    def cache_namespaces(self) -> set[str]:
        """Any post written or deleted makes the cached list totals stale (see webapp/caching.py)."""
        return {"posts"}

    def __repr__(self) -> str:
        return f"<Post {self.id}>"
