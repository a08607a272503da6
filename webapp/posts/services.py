"""Posts: visibility (drafts for their author and admins only), listing, writing, deleting."""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, func, or_, select, true
from sqlalchemy.orm import Session, joinedload

from webapp import caching, validation
from webapp.auth.permissions import Permission, can, require
from webapp.db import MAX_ID
from webapp.errors import BadToken, Invalid, NotFound
from webapp.posts.models import Post
from webapp.users.models import User
from webapp.users.services import _escape_like

TITLE_MAX = 200
CONTENT_MAX = 50_000
SORTS = {"created_at": Post.created_at, "updated_at": Post.updated_at, "title": Post.title, "id": Post.id}
DEFAULT_SORT = "-created_at"
NOT_FOUND = "Post not found."
# Totals up to this many rows are exact; above it PostgreSQL's planner estimate is returned
# (X-Pagination says "total_is_estimate": true). Counting is bounded either way: an exact
# COUNT(*) over a million rows is what made page 1 grow with the table.
EXACT_COUNT_UP_TO = 10_000
COUNT_TTL = 600  # seconds; every post write invalidates sooner (the "posts" namespace)
BAD_CURSOR = "Not a valid cursor for this list (it belongs to the same filters and sort)."
UNVERIFIED = "Verify your email address before writing posts."


def visible(viewer: User | None):
    """The SQL condition for posts `viewer` may read."""
    if viewer is None:
        return Post.published.is_(True)
    if viewer.is_admin:
        return true()
    return or_(Post.published.is_(True), Post.author_id == viewer.id)


def _post_id(post_id) -> int:
    """A path id as a post id; anything else (including past 64 bits) is simply not found."""
    try:
        post_id = int(post_id)
    except (TypeError, ValueError):
        raise NotFound(NOT_FOUND) from None
    if not 0 < post_id <= MAX_ID:
        raise NotFound(NOT_FOUND)
    return post_id


def get_post(session: Session, viewer: User | None, post_id) -> Post:
    """A post the viewer may read; a draft they may not see is NotFound, not Forbidden."""
    post_id = _post_id(post_id)
    post = session.scalar(select(Post).options(joinedload(Post.author))
                          .where(Post.id == post_id, visible(viewer)))
    if post is None:
        raise NotFound(NOT_FOUND)
    return post


def posts_query(viewer: User | None, *, author_id: int | None = None, q: str | None = None,
                published: bool | None = None, sort: str = DEFAULT_SORT) -> Select:
    """Visible posts filtered by author, title search and state, ordered by `sort` (`-` descending)."""
    stmt = select(Post).where(visible(viewer))
    if author_id is not None:
        stmt = stmt.where(Post.author_id == author_id)
    if published is not None:
        stmt = stmt.where(Post.published.is_(published))
    if q:
        q = validation.text(q, max_len=100).strip()
        # ILIKE on PostgreSQL (served by the pg_trgm GIN index), lower() LIKE on SQLite.
        stmt = stmt.where(Post.title.ilike(f"%{_escape_like(q)}%", escape="\\"))
    key = sort.lstrip("-")
    if key not in SORTS:
        raise Invalid("Validation failed.", errors={"sort": [f"Must be one of: {', '.join(sorted(SORTS))} (prefix - for descending)."]})
    descending = sort.startswith("-")
    column = SORTS[key]
    order = [column.desc() if descending else column.asc()]
    if key != "id":
        order.append(Post.id.desc() if descending else Post.id.asc())
    return stmt.order_by(*order)


@dataclass
class PostPage:
    items: list
    total: int | None = None  # None when not asked for (count=False)
    exact: bool = True  # False: `total` is the planner's estimate (above EXACT_COUNT_UP_TO)
    next_cursor: str | None = None  # the keyset position after the last item, when there is more


def encode_cursor(sort: str, value, post_id: int) -> str:
    """Opaque to clients: the sort and the (sort value, id) of the last item they saw."""
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort, value, int(post_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str):
    """(value, id) of a cursor made for `sort`; anything else is a 422 on `cursor`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, value, post_id = json.loads(raw)
        if cursor_sort != sort or type(post_id) is not int or not 0 <= post_id <= MAX_ID:
            raise ValueError
        key = sort.lstrip("-")
        if key in ("created_at", "updated_at"):
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError
        elif key == "title":
            if not isinstance(value, str):
                raise ValueError
        else:
            value = post_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
        # 400, like any other opaque token we did not issue for this request (422 is for the schema)
        raise BadToken(BAD_CURSOR, errors={"cursor": [BAD_CURSOR]}) from None
    return value, post_id


def _after(sort: str, value, post_id: int):
    """Rows strictly after (value, id) in `sort` order, as a range the sort's index can seek.

    `col <= v AND (col < v OR id < i)` rather than a row comparison: portable to SQLite, and
    the first term gives PostgreSQL the index bound (no OFFSET, no scan of what came before).
    """
    descending = sort.startswith("-")
    column, key = SORTS[sort.lstrip("-")], sort.lstrip("-")
    if key == "id":
        return Post.id < post_id if descending else Post.id > post_id
    if descending:
        return and_(column <= value, or_(column < value, Post.id < post_id))
    return and_(column >= value, or_(column > value, Post.id > post_id))


def _count_key(viewer: User | None, filters: dict) -> str:
    who = "anon" if viewer is None else ("admin" if viewer.is_admin else f"user:{viewer.id}")
    facts = {key: filters.get(key) for key in ("author_id", "q", "published")}
    if facts["q"]:
        facts["q"] = str(facts["q"]).strip()
    digest = hashlib.sha256(json.dumps([who, facts], sort_keys=True, default=str).encode()).hexdigest()[:32]
    return f"count:{digest}"


def _count(session: Session, stmt: Select) -> tuple[int, bool]:
    """(total, exact): exact up to EXACT_COUNT_UP_TO; beyond it, on PostgreSQL, the planner's estimate."""
    ids = stmt.order_by(None).with_only_columns(Post.id)
    if session.get_bind().dialect.name != "postgresql":
        return session.scalar(select(func.count()).select_from(ids.subquery())), True
    bounded = session.scalar(select(func.count()).select_from(ids.limit(EXACT_COUNT_UP_TO + 1).subquery()))
    if bounded <= EXACT_COUNT_UP_TO:
        return bounded, True
    connection = session.connection()
    compiled = ids.compile(dialect=connection.dialect)
    plan = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params).scalar()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return max(int(plan[0]["Plan"]["Plan Rows"]), EXACT_COUNT_UP_TO + 1), False


def count_posts(session: Session, viewer: User | None, **filters) -> tuple[int, bool]:
    """The total for a filter set, cached under "posts" (any post write re-counts)."""
    stmt = posts_query(viewer, **{**filters, "sort": DEFAULT_SORT})
    total, exact = caching.cached("posts", _count_key(viewer, filters), lambda: _count(session, stmt),
                                  timeout=COUNT_TTL)
    return total, exact


def list_posts(session: Session, viewer: User | None, *, offset: int = 0, limit: int = 20,
               cursor: str | None = None, count: bool = True, **filters) -> PostPage:
    """A page of posts: by OFFSET, or after `cursor` (keyset: cost independent of the depth)."""
    sort = filters.get("sort", DEFAULT_SORT)
    stmt = posts_query(viewer, **filters)
    if cursor is not None:
        stmt = stmt.where(_after(sort, *decode_cursor(cursor, sort)))
        offset = 0
    rows = list(session.scalars(stmt.options(joinedload(Post.author)).offset(offset).limit(limit + 1)).unique())
    page = PostPage(items=rows[:limit])
    if len(rows) > limit and page.items:
        last = page.items[-1]
        page.next_cursor = encode_cursor(sort, getattr(last, sort.lstrip("-")), last.id)
    if count:
        page.total, page.exact = count_posts(session, viewer, **{k: v for k, v in filters.items() if k != "sort"})
    return page


def posts_by_authors(session: Session, viewer: User | None, author_ids, limit: int) -> dict[int, list[Post]]:
    """The newest `limit` visible posts of each author, in one statement (a window function)."""
    ids = sorted(set(author_ids))
    found: dict[int, list[Post]] = {author_id: [] for author_id in ids}
    if not ids or limit <= 0:
        return found
    rank = func.row_number().over(partition_by=Post.author_id,
                                  order_by=(Post.created_at.desc(), Post.id.desc())).label("rank")
    ranked = (select(Post.id, rank).where(Post.author_id.in_(ids), visible(viewer)).subquery())
    stmt = (select(Post).join(ranked, ranked.c.id == Post.id).where(ranked.c.rank <= limit)
            .order_by(Post.author_id, Post.created_at.desc(), Post.id.desc()))
    for post in session.scalars(stmt):
        found[post.author_id].append(post)
    return found


def _clean(changes: dict, *, required: tuple = ()) -> dict:
    missing = [key for key in required if key not in changes]
    if missing:
        raise Invalid("Validation failed.", errors={key: ["Missing data for required field."] for key in missing})
    clean: dict = {}
    checks = {}
    if "title" in changes:
        checks["title"] = lambda: clean.__setitem__("title", _title(changes["title"]))
    if "content" in changes:
        checks["content"] = lambda: clean.__setitem__(
            "content", validation.text(changes["content"], max_len=CONTENT_MAX))
    if "published" in changes:
        checks["published"] = lambda: clean.__setitem__("published", _flag(changes["published"]))
    validation.collect(checks)
    return clean


def _title(value) -> str:
    value = validation.text(value, max_len=TITLE_MAX).strip()
    if not value:
        raise Invalid("Must not be blank.")
    return value


def _flag(value) -> bool:
    if not isinstance(value, bool):
        raise Invalid("Not a valid boolean.")
    return value


def create_post(session: Session, actor: User | None, *, title, content="", published=False) -> Post:
    require(actor, Permission.CREATE_POST, message=UNVERIFIED)
    clean = _clean({"title": title, "content": content, "published": published})
    post = Post(author_id=actor.id, **clean)
    post.author = actor
    session.add(post)
    session.commit()
    return post


def update_post(session: Session, actor: User | None, post: Post, changes: dict, *, replace: bool = False) -> Post:
    """Edit a post (PUT when `replace`: title and content required, published defaults to false)."""
    require(actor, Permission.EDIT_POST, post)
    if replace:
        changes = {"published": False, **changes}
    clean = _clean(changes, required=("title", "content") if replace else ())
    for key, value in clean.items():
        setattr(post, key, value)
    session.commit()
    return post


def delete_post(session: Session, actor: User | None, post: Post) -> None:
    require(actor, Permission.EDIT_POST, post)
    session.delete(post)
    session.commit()


def post_view(post: Post) -> dict:
    """What both doors return for a post (its author is loaded with it)."""
    return {"id": post.id, "title": post.title, "content": post.content, "published": post.published,
            "created_at": post.created_at, "updated_at": post.updated_at, "author_id": post.author_id,
            "author": {"id": post.author.id, "name": post.author.name}}


def _viewer_key(viewer: User | None) -> str:
    """Who a cached read was computed for: what they may see is all that differs."""
    if viewer is None:
        return "anon"
    return "admin" if viewer.is_admin else f"user{viewer.id}"


def post_card(session: Session, viewer: User | None, post_id) -> dict:
    """`post_view` of a post the viewer may read, from the cache when fresh (namespace "posts")."""
    post_id = _post_id(post_id)

    def load():
        post = session.scalar(select(Post).options(joinedload(Post.author)).where(Post.id == post_id))
        return post_view(post) if post is not None else None

    card = caching.cached("posts", f"card:{post_id}", load)
    if card is None or not (card["published"] or can(viewer, Permission.VIEW_DRAFT,
                                                      _Owned(card["author_id"]))):
        raise NotFound(NOT_FOUND)
    return card


@dataclass
class _Owned:
    author_id: int


def list_page(session: Session, viewer: User | None, *, offset: int = 0, limit: int = 20,
              cursor: str | None = None, **filters) -> dict:
    """A page of post views with its total and next cursor, cached per viewer kind and arguments."""
    key = json.dumps([_viewer_key(viewer), offset, limit, cursor, sorted(filters.items())], default=str)

    def load():
        page = list_posts(session, viewer, offset=offset, limit=limit, cursor=cursor, **filters)
        return {"items": [post_view(post) for post in page.items], "total": page.total,
                "exact": page.exact, "next_cursor": page.next_cursor}

    return caching.cached("posts", "page:" + hashlib.sha256(key.encode()).hexdigest(), load, timeout=COUNT_TTL)
