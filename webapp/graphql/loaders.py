"""Per-request batch loading for the sync GraphQL view (one `Loaders` per request, in the context).

A list resolver *primes* the loader with the rows it returned (`saw_users`, `saw_posts`); the
first child resolver that needs related rows (a user's posts, a post's author) loads them for
every primed parent in one statement, and the rest read the cache. Nothing is fetched for a
field that is not selected, and the statement count does not grow with list sizes.
"""
from __future__ import annotations

from sqlalchemy import select

from webapp.posts.models import Post
from webapp.posts.services import posts_by_authors
from webapp.users.models import User


class Loaders:
    def __init__(self, session, viewer):
        self.session, self.viewer = session, viewer
        self.users: dict[int, User] = {}
        self._post_owners: set[int] = set()        # users whose posts may be asked for
        self._posts: dict[tuple[int, int], list[Post]] = {}
        self._wanted_authors: set[int] = set()

    def saw_users(self, users) -> None:
        for user in users:
            self.users[user.id] = user
            self._post_owners.add(user.id)

    def saw_posts(self, posts) -> None:
        self._wanted_authors.update(post.author_id for post in posts)
        for post in posts:
            if "author" in post.__dict__ and post.author is not None:
                self.users.setdefault(post.author.id, post.author)

    def posts_of(self, user_id: int, limit: int) -> list[Post]:
        """The newest `limit` posts of a user the viewer may read, batched over every primed user."""
        if (user_id, limit) not in self._posts:
            known = self._post_owners | self.users.keys() | self._wanted_authors
            ids = {user_id} | {uid for uid in known if (uid, limit) not in self._posts}
            for owner, posts in posts_by_authors(self.session, self.viewer, ids, limit).items():
                self._posts[(owner, limit)] = posts
                self.saw_posts(posts)
        return self._posts[(user_id, limit)]

    def user(self, user_id: int) -> User | None:
        """A post's author: every wanted author not yet known is loaded in one statement."""
        if user_id not in self.users:
            missing = (self._wanted_authors | {user_id}) - self.users.keys()
            for user in self.session.scalars(select(User).where(User.id.in_(missing))).unique():
                self.users[user.id] = user
        return self.users.get(user_id)
