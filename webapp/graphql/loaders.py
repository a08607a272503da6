"""Per-request batch loading for the sync GraphQL view (one `Loaders` per request, in the context).

A list resolver *primes* the loader with the rows it returned (`saw_users`, `saw_posts`); the
first child resolver that needs related rows (a user's posts, a post's author) loads them for
every primed parent in one statement, and the rest read the cache. Nothing is fetched for a
field that is not selected, and the statement count does not grow with list sizes. What is
loaded are plain rows and snapshots (no ORM instances: a read needs no change tracking), and
each user becomes a GraphQL `User` once per request however many posts name them (`shown`).
"""
from __future__ import annotations

from webapp.posts.services import posts_by_authors
from webapp.users.services import cards_by_id


class Loaders:
    def __init__(self, session, viewer):
        self.session, self.viewer = session, viewer
        self.users: dict[int, object] = {}         # user id → a user (snapshot or model)
        self.shown: dict[int, object] = {}         # user id → its GraphQL User for this viewer
        self._post_owners: set[int] = set()        # users whose posts may be asked for
        self._posts: dict[tuple[int, int], list] = {}
        self._wanted_authors: set[int] = set()

    def saw_users(self, users) -> None:
        for user in users:
            self.users[user.id] = user
            self._post_owners.add(user.id)

    def saw_posts(self, posts) -> None:
        """Posts whose authors may be asked for; a post model loaded with its author primes it."""
        for post in posts:
            self._wanted_authors.add(post.author_id)
            author = getattr(post, "__dict__", {}).get("author")  # rows have no attributes to load
            if author is not None:
                self.users.setdefault(author.id, author)

    def posts_of(self, user_id: int, limit: int) -> list:
        """The newest `limit` posts of a user the viewer may read, batched over every primed user."""
        if (user_id, limit) not in self._posts:
            known = self._post_owners | self.users.keys() | self._wanted_authors
            ids = {user_id} | {uid for uid in known if (uid, limit) not in self._posts}
            for owner, posts in posts_by_authors(self.session, self.viewer, ids, limit).items():
                self._posts[(owner, limit)] = posts
                self.saw_posts(posts)
        return self._posts[(user_id, limit)]

    def user(self, user_id: int):
        """A post's author: every wanted author not yet known is loaded in one statement."""
        if user_id not in self.users:
            missing = (self._wanted_authors | {user_id}) - self.users.keys()
            self.users.update(cards_by_id(self.session, missing))
        return self.users.get(user_id)
