"""GraphQL posts: the Post type, its queries and mutations, and profile edits — same services as REST."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

import strawberry
from strawberry.types import Info

from webapp.errors import Invalid, Unauthenticated
from webapp.extensions import db
from webapp.graphql.types import PartialInput
from webapp.posts import services as posts
from webapp.profiles import services as profiles
from webapp.users import services as users

MAX_LIMIT = 100
MAX_SKIP = 10_000  # OFFSET costs what it skips; deeper walks use REST's cursor


def clamp(limit: int | None, default: int = 20) -> int:
    if limit is None:
        return default
    return max(0, min(int(limit), MAX_LIMIT))


def optional_viewer(info: Info):
    """The viewer, or None when anonymous; a token that was sent but is bad is still UNAUTHENTICATED."""
    context = info.context
    if context.viewer is None and context.auth_error:
        raise Unauthenticated(context.auth_error)
    return context.viewer


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
    def author(self, info: Info) -> "User":
        from webapp.graphql.types import User

        author = info.context.loaders.user(self.author_id)
        return User.from_view(users.user_view(info.context.viewer, author))


def user_posts(info: Info, user_id: int, limit: int) -> list[Post]:
    """Resolver body of `User.posts`: batched over every user of the parent list."""
    return [Post.from_model(post) for post in info.context.loaders.posts_of(user_id, clamp(limit))]


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


@strawberry.input
class UpdateProfileInput(PartialInput):
    first_name: Optional[str] = strawberry.UNSET
    last_name: Optional[str] = strawberry.UNSET
    bio: Optional[str] = strawberry.UNSET


@strawberry.type
class PostQuery:
    @strawberry.field(description="One post; a draft is NOT_FOUND unless you wrote it or are an admin.")
    def post(self, info: Info, id: int) -> Post:
        post = posts.get_post(db.session, optional_viewer(info), id)
        info.context.loaders.saw_posts([post])
        return Post.from_model(post)

    @strawberry.field(description="Newest first: published posts plus your own drafts; limit is capped at 100, "
                                  "skip at 10000 (deeper: REST /posts with its cursor).")
    def posts(self, info: Info, skip: int = 0, limit: int = 20, author_id: Optional[int] = None) -> list[Post]:
        if skip > MAX_SKIP:
            raise Invalid("Validation failed.", errors={"skip": [f"Must be at most {MAX_SKIP}."]})
        page = posts.list_posts(db.session, optional_viewer(info), offset=max(0, skip), limit=clamp(limit),
                                author_id=author_id, count=False)
        info.context.loaders.saw_posts(page.items)
        return [Post.from_model(post) for post in page.items]


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

    @strawberry.mutation(description="Change first name, last name or bio (the user themself or an admin).")
    def update_profile(self, info: Info, user_id: int, input: UpdateProfileInput) -> "Profile":
        from webapp.graphql.types import Profile

        viewer = info.context.require_viewer()
        profile = profiles.update_profile(db.session, viewer, users.get_user(db.session, user_id), input.changes())
        return Profile.from_view(users.profile_view(profile))


from webapp.graphql.types import Profile, User  # noqa: E402  (the types refer to each other)
