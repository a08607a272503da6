"""GraphQL posts: the Post type, its queries and mutations — the same services as REST /posts."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import strawberry
from strawberry.types import Info

from webapp.extensions import db
from webapp.graphql.common import PartialInput, asked, post_columns
from webapp.graphql.users import User, posts_of, shown
from webapp.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_SKIP, clamp
from webapp.pagination import skip as checked_skip
from webapp.posts import services as posts


@strawberry.type
class Post:
    id: int
    title: str
    content: str
    published: bool
    created_at: datetime
    updated_at: datetime
    author_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, post) -> "Post":
        return cls(id=post.id, title=post.title, content=post.content, published=post.published,
                   created_at=post.created_at, updated_at=post.updated_at, author_id=post.author_id)

    @strawberry.field
    def author(self, info: Info) -> User:
        return author_of(self, info)


def author_of(post, info) -> User:
    """`Post.author`, loaded for every post of the answer at once (webapp/graphql/loaders.py)."""
    return shown(info.context, info.context.loaders.user(post.author_id))


# Fields a list repeats per item, which graphql-core calls without strawberry's per-call wrapper.
DIRECT_RESOLVERS = {("Post", "author"): author_of, ("User", "posts"): posts_of}


@strawberry.input
class CreatePostInput:
    title: str
    content: str = ""
    published: bool = False


@strawberry.input
class UpdatePostInput(PartialInput):
    title: Optional[str] = strawberry.UNSET
    content: Optional[str] = strawberry.UNSET
    published: Optional[bool] = strawberry.UNSET


@strawberry.type
class PostQuery:
    @strawberry.field(description="One post; null with a NOT_FOUND error when there is none (a draft is "
                                  "NOT_FOUND unless you wrote it or are an admin).")
    def post(self, info: Info, id: int) -> Optional[Post]:
        post = posts.get_post(db.session, info.context.viewer_or_none(), id)
        info.context.loaders.saw_posts([post])
        return Post.from_model(post)

    @strawberry.field(description=f"Newest first: published posts plus your own drafts; limit is capped at "
                                  f"{MAX_PAGE_SIZE}, skip at {MAX_SKIP} (deeper: REST /posts with its cursor).")
    def posts(self, info: Info, skip: int = 0, limit: int = DEFAULT_PAGE_SIZE,
              author_id: Optional[int] = None) -> list[Post]:
        offset = checked_skip(skip, bound=MAX_SKIP)
        fields = asked(info)
        authors = "author" in fields  # then read with the posts, in one statement
        rows = posts.post_rows(db.session, info.context.viewer_or_none(), offset=offset, limit=clamp(limit),
                               author_id=author_id, columns=post_columns(fields), authors=authors)
        if authors:
            info.context.loaders.know_users(row.author_card for row in rows)
        info.context.loaders.saw_posts(rows)
        return rows  # the type's fields are the row's columns (those asked for)


@strawberry.type
class PostMutation:
    @strawberry.mutation(description="Write a post (needs a verified email).")
    def create_post(self, info: Info, input: CreatePostInput) -> Post:
        post = posts.create_post(db.session, info.context.require_viewer(), title=input.title,
                                 content=input.content, published=input.published)
        info.context.loaders.saw_posts([post])
        return Post.from_model(post)

    @strawberry.mutation
    def update_post(self, info: Info, id: int, input: UpdatePostInput) -> Post:
        viewer = info.context.require_viewer()
        post = posts.update_post(db.session, viewer, posts.get_post(db.session, viewer, id), input.changes())
        info.context.loaders.saw_posts([post])
        return Post.from_model(post)

    @strawberry.mutation
    def delete_post(self, info: Info, id: int) -> bool:
        viewer = info.context.require_viewer()
        posts.delete_post(db.session, viewer, posts.get_post(db.session, viewer, id))
        return True
