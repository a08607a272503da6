"""Posts: reads with visibility (drafts for their author and admins only), listing, writing, deleting.

Which posts a viewer may read is webapp/posts/queries.py; totals are counting.py; the cached
reads the doors serve are cached.py; the cursor codec is webapp/pagination.py.
"""
from __future__ import annotations

import functools
from collections import namedtuple
from dataclasses import dataclass

from sqlalchemy import Select, bindparam, func, select, true
from sqlalchemy.orm import Session, joinedload

from webapp import validation
from webapp.auth.permissions import Permission, require
from webapp.db import MAX_ID
from webapp.errors import Invalid, NotFound
from webapp.events import publish
from webapp.pagination import DEFAULT_PAGE_SIZE, decode_cursor, encode_cursor
from webapp.posts.counting import count_posts
from webapp.posts.models import Post
from webapp.posts.queries import DEFAULT_SORT, Readable, after, posts_query, readable, visible
from webapp.users.models import Profile, User
from webapp.users.services import AUTHOR_COLUMNS, card_of

TITLE_MAX = 200
CONTENT_MAX = 50_000
NOT_FOUND = "Post not found."
UNVERIFIED = "Verify your email address before writing posts."
PUBLIC_TOPIC, PUBLISHED = "posts", "post.published"  # the realtime event of a post becoming public


def post_id_of(post_id) -> int:
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
    post_id = post_id_of(post_id)
    post = session.scalar(select(Post).options(joinedload(Post.author))
                          .where(Post.id == post_id, visible(viewer)))
    if post is None:
        raise NotFound(NOT_FOUND)
    return post


@dataclass
class PostPage:
    items: list
    total: int | None = None  # None when not asked for (count=False)
    exact: bool = True  # False: `total` is the planner's estimate (above EXACT_COUNT_UP_TO)
    next_cursor: str | None = None  # the keyset position after the last item, when there is more


def list_posts(session: Session, viewer: User | None, *, offset: int = 0, limit: int = DEFAULT_PAGE_SIZE,
               cursor: str | None = None, count: bool = True, **filters) -> PostPage:
    """A page of posts: by OFFSET, or after `cursor` (keyset: cost independent of the depth)."""
    sort = filters.get("sort", DEFAULT_SORT)
    stmt = posts_query(viewer, **filters)
    if cursor is not None:
        stmt = stmt.where(after(sort, *decode_cursor(cursor, sort)))
        offset = 0
    rows = list(session.scalars(stmt.options(joinedload(Post.author)).offset(offset).limit(limit + 1)).unique())
    page = PostPage(items=rows[:limit])
    if len(rows) > limit and page.items:
        last = page.items[-1]
        page.next_cursor = encode_cursor(sort, getattr(last, sort.lstrip("-")), last.id)
    if count:
        page.total, page.exact = count_posts(session, viewer, **{k: v for k, v in filters.items() if k != "sort"})
    return page


POST_COLUMNS = tuple(column.key for column in Post.__table__.c)
NEWEST_FIRST = (Post.created_at.desc(), Post.id.desc())  # DEFAULT_SORT, as posts_query orders it


def post_rows(session: Session, viewer: User | None, *, offset: int = 0, limit: int = DEFAULT_PAGE_SIZE,
              author_id: int | None = None, columns=POST_COLUMNS, authors: bool = False) -> list[tuple]:
    """A page of visible posts, newest first, as plain named tuples of `columns` (id and author_id
    always), without a total: what GraphQL lists read, no ORM instance, identity map or change
    tracking per row, and no column the answer does not show. With `authors`, each also carries
    its author's card (`author_card`, as `user_card` makes it), read in the same statement."""
    rule, shape = readable(viewer), _shape(columns)
    params = {"offset": offset, "limit": limit, **rule.params}
    if author_id is not None:
        params["author_id"] = author_id
    result = session.execute(_page_of_rows(rule.shape, author_id is not None, authors, shape), params)
    make = _tuple_of(shape, authors)
    if not authors:
        return [make._make(row) for row in result]
    width = len(shape)
    return [make(*row[:width], card_of(row[width:])) for row in result]


def posts_by_authors(session: Session, viewer: User | None, author_ids, limit: int,
                     columns=POST_COLUMNS) -> dict[int, list[tuple]]:
    """The newest `limit` visible posts of each author as named tuples of `columns` (as `post_rows`),
    in one statement (`_newest_of_each`)."""
    ids = sorted(set(author_ids))
    found: dict[int, list[tuple]] = {author_id: [] for author_id in ids}
    if not ids or limit <= 0:
        return found
    rule, shape = readable(viewer), _shape(columns)
    make = _tuple_of(shape, False)
    lateral = session.get_bind(clause=_newest_of_each(rule.shape, shape, False)).dialect.name == "postgresql"
    for row in session.execute(_newest_of_each(rule.shape, shape, lateral),
                               {"ids": ids, "limit": limit, **rule.params}):
        post = make._make(row)
        found[post.author_id].append(post)
    return found


def _shape(columns) -> tuple[str, ...]:
    """`columns` in the table's order, with id and author_id (what a list groups and links by)."""
    return tuple(key for key in POST_COLUMNS if key in columns or key in ("id", "author_id"))


@functools.cache
def _tuple_of(shape: tuple[str, ...], authors: bool) -> type:
    """A named tuple per shape: attribute reads as cheap as a plain object's, and no Row lookups
    (a Row answers a missing attribute by raising through Python, as strawberry asks each item)."""
    return namedtuple("PostRow", shape + (("author_card",) if authors else ()))


@functools.cache
def _page_of_rows(rule: Readable, by_author: bool, authors: bool, shape: tuple[str, ...]) -> Select:
    """`post_rows`' statement, built once per kind of viewer and shape (offset, limit, ids are bound)."""
    stmt = select(*(Post.__table__.c[key] for key in shape)).where(rule.where())
    if by_author:
        stmt = stmt.where(Post.author_id == bindparam("author_id"))
    if authors:
        stmt = stmt.add_columns(*AUTHOR_COLUMNS).select_from(
            Post.__table__.join(User.__table__, User.id == Post.author_id).outerjoin(Profile.__table__))
    return stmt.order_by(*NEWEST_FIRST).offset(bindparam("offset")).limit(bindparam("limit"))


@functools.cache
def _newest_of_each(rule: Readable, shape: tuple[str, ...], lateral: bool) -> Select:
    """`posts_by_authors`' statement for one kind of viewer and shape, built once: building it cost
    more than running it (1.7 M instructions a request; the authors, limit and viewer are bound).

    On PostgreSQL a LATERAL subquery per author reads just their newest `limit` posts through the
    (author_id, created_at, id) index; elsewhere a window function ranks all their posts."""
    if lateral:
        owners = select(User.id).where(User.id.in_(bindparam("ids", expanding=True))).subquery("owners")
        newest = (select(*(Post.__table__.c[key] for key in shape if key != "created_at"), Post.created_at)
                  .where(Post.author_id == owners.c.id, rule.where()).order_by(*NEWEST_FIRST)
                  .limit(bindparam("limit")).lateral("newest"))
        return (select(*(newest.c[key] for key in shape)).select_from(owners.join(newest, true()))
                .order_by(newest.c.author_id, newest.c.created_at.desc(), newest.c.id.desc()))
    rank = func.row_number().over(partition_by=Post.author_id, order_by=NEWEST_FIRST).label("rank")
    ranked = (select(Post.id, rank).where(Post.author_id.in_(bindparam("ids", expanding=True)), rule.where())
              .subquery())
    return (select(*(Post.__table__.c[key] for key in shape)).join(ranked, ranked.c.id == Post.id)
            .where(ranked.c.rank <= bindparam("limit"))
            .order_by(Post.author_id, *NEWEST_FIRST))


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
    if post.published:
        publish(PUBLIC_TOPIC, PUBLISHED, post, session=session)
    session.commit()
    return post


def update_post(session: Session, actor: User | None, post: Post, changes: dict, *, replace: bool = False) -> Post:
    """Edit a post (PUT when `replace`: title and content required, published defaults to false)."""
    require(actor, Permission.EDIT_POST, post)
    if replace:
        changes = {"published": False, **changes}
    clean = _clean(changes, required=("title", "content") if replace else ())
    was_public = post.published
    for key, value in clean.items():
        setattr(post, key, value)
    if post.published and not was_public:
        publish(PUBLIC_TOPIC, PUBLISHED, post, session=session)
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
