"""The post reads the doors serve from the cache (namespace "posts": any post write refreshes them)."""
from __future__ import annotations

import hashlib
import json

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from webapp import caching
from webapp.errors import NotFound
from webapp.pagination import DEFAULT_PAGE_SIZE
from webapp.posts.counting import COUNT_TTL
from webapp.posts.models import Post
from webapp.posts.queries import readable
from webapp.posts.services import NOT_FOUND, list_posts, post_id_of, post_view
from webapp.users.models import User


def _viewer_key(viewer: User | None) -> str:
    """Who a cached read was computed for: what they may see is all that differs."""
    if viewer is None:
        return "anon"
    return "admin" if viewer.is_admin else f"user{viewer.id}"


def post_card(session: Session, viewer: User | None, post_id) -> dict:
    """`post_view` of a post the viewer may read, from the cache when fresh (namespace "posts")."""
    post_id = post_id_of(post_id)

    def load():
        post = session.scalar(select(Post).options(joinedload(Post.author)).where(Post.id == post_id))
        return post_view(post) if post is not None else None

    card = caching.cached("posts", f"card:{post_id}", load)
    if card is None or not readable(viewer).allows(card["published"], card["author_id"]):
        raise NotFound(NOT_FOUND)
    return card


def list_page(session: Session, viewer: User | None, *, offset: int = 0, limit: int = DEFAULT_PAGE_SIZE,
              cursor: str | None = None, **filters) -> dict:
    """A page of post views with its total and next cursor, cached per viewer kind and arguments."""
    key = json.dumps([_viewer_key(viewer), offset, limit, cursor, sorted(filters.items())], default=str)

    def load():
        page = list_posts(session, viewer, offset=offset, limit=limit, cursor=cursor, **filters)
        return {"items": [post_view(post) for post in page.items], "total": page.total,
                "exact": page.exact, "next_cursor": page.next_cursor}

    return caching.cached("posts", "page:" + hashlib.sha256(key.encode()).hexdigest(), load, timeout=COUNT_TTL)
