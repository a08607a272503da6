"""Post list totals: exact while small, PostgreSQL's planner estimate when large, cached either way."""
from __future__ import annotations

import hashlib
import json

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from webapp import caching
from webapp.posts.models import Post
from webapp.posts.queries import DEFAULT_SORT, posts_query
from webapp.users.models import User

# Totals up to this many rows are exact; above it PostgreSQL's planner estimate is returned
# (X-Pagination says "total_is_estimate": true). Counting is bounded either way: an exact
# COUNT(*) over a million rows is what made page 1 grow with the table.
EXACT_COUNT_UP_TO = 10_000
COUNT_TTL = 600  # seconds; every post write invalidates sooner (the "posts" namespace)


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
