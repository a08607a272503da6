"""Which posts a viewer may read, as SQL: the one draft-visibility rule, filters, sorts, keyset seeks."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, and_, bindparam, or_, select, true

from webapp import validation
from webapp.auth.permissions import Permission, can
from webapp.errors import Invalid
from webapp.posts.models import Post
from webapp.users.models import User
from webapp.users.services import escape_like

SORTS = {"created_at": Post.created_at, "updated_at": Post.updated_at, "title": Post.title, "id": Post.id}
DEFAULT_SORT = "-created_at"


@dataclass(frozen=True)
class Readable:
    """The posts one viewer may read: every published post, plus the drafts of `drafts_of`.

    `drafts_of` is "all" (admins), one author's id (the viewer's own drafts) or None
    (anonymous). `where()` is the rule as SQL, `allows()` the same rule on a loaded post or a
    cached view, so a list and a single read can never disagree. The viewer's id is the bound
    parameter `viewer_id`: SQL built once from `shape` serves every viewer of that kind, run
    with `params`.
    """

    drafts_of: str | int | None

    def where(self):
        if self.drafts_of == "all":
            return true()
        if self.drafts_of is None:
            return Post.published.is_(True)
        return or_(Post.published.is_(True), Post.author_id == bindparam("viewer_id", self.drafts_of))

    @property
    def shape(self) -> "Readable":
        """The same rule for every viewer of this kind (admin, anonymous, or one author)."""
        return Readable(0) if isinstance(self.drafts_of, int) else self

    @property
    def params(self) -> dict:
        return {"viewer_id": self.drafts_of} if isinstance(self.drafts_of, int) else {}

    def allows(self, published: bool, author_id: int) -> bool:
        return bool(published) or self.drafts_of == "all" or (
            self.drafts_of is not None and author_id == self.drafts_of)


def readable(viewer: User | None) -> Readable:
    """Drafts only for their author and admins (PRODUCT.md), asked of the one policy, `can()`."""
    if viewer is None:
        return Readable(None)
    if can(viewer, Permission.VIEW_DRAFT):  # with no post: true only for who may read every draft
        return Readable("all")
    return Readable(viewer.id)


def visible(viewer: User | None):
    """The SQL condition for posts `viewer` may read."""
    return readable(viewer).where()


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
        stmt = stmt.where(Post.title.ilike(f"%{escape_like(q)}%", escape="\\"))
    key = sort.lstrip("-")
    if key not in SORTS:
        raise Invalid("Validation failed.", errors={"sort": [f"Must be one of: {', '.join(sorted(SORTS))} (prefix - for descending)."]})
    descending = sort.startswith("-")
    column = SORTS[key]
    order = [column.desc() if descending else column.asc()]
    if key != "id":
        order.append(Post.id.desc() if descending else Post.id.asc())
    return stmt.order_by(*order)


def after(sort: str, value, post_id: int):
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
