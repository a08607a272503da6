"""Per-request batch loading for the sync GraphQL view (one `Loaders` per request, in the context).

A list resolver *primes* the loader with the rows it returned (`saw_users`, `saw_posts`); the
first child resolver that needs related rows (a user's posts, a post's author) loads them for
every primed parent in one statement, and the rest read the cache. Nothing is fetched for a
field that is not selected, and the statement count does not grow with list sizes. What is
loaded are named tuples of the columns the selection shows and snapshots (no ORM instances: a
read needs no change tracking); authors a list read with its posts are known (`know_users`) and
never loaded again; each user becomes a GraphQL `User` once per request however many posts name
them (`shown`).
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
        self._posts: dict[tuple, list] = {}     # (user id, limit, columns) → their posts
        self._wanted_authors: set[int] = set()
        self._columns: dict[int, frozenset] = {}   # id of a field's AST node → the post columns it shows

    def saw_users(self, users) -> None:
        for user in users:
            self.users[user.id] = user
            self._post_owners.add(user.id)

    def know_users(self, users) -> None:
        """Users read along with other rows (posts' authors): no statement loads them again."""
        for user in users:
            self.users.setdefault(user.id, user)

    def saw_posts(self, posts) -> None:
        """Posts whose authors may be asked for; a post model loaded with its author primes it."""
        for post in posts:
            self._wanted_authors.add(post.author_id)
            author = getattr(post, "__dict__", {}).get("author")  # rows have no attributes to load
            if author is not None:
                self.users.setdefault(author.id, author)

    def columns_of(self, info, find) -> frozenset:
        """The post columns `info`'s field shows (`find()`), worked out once per field of the document."""
        node = id(info.field_nodes[0])
        columns = self._columns.get(node)
        if columns is None:
            columns = self._columns[node] = find()
        return columns

    def posts_of(self, user_id: int, limit: int, columns: frozenset) -> list:
        """The newest `limit` posts of a user the viewer may read (`columns` of them), batched over
        every primed user."""
        key = (user_id, limit, columns)
        if key not in self._posts:
            known = self._post_owners | self.users.keys() | self._wanted_authors
            ids = {user_id} | {uid for uid in known if (uid, limit, columns) not in self._posts}
            for owner, posts in posts_by_authors(self.session, self.viewer, ids, limit, columns).items():
                self._posts[(owner, limit, columns)] = posts
                self._wanted_authors.update(post.author_id for post in posts)
        return self._posts[key]

    def user(self, user_id: int):
        """A post's author: every wanted author not yet known is loaded in one statement."""
        if user_id not in self.users:
            missing = (self._wanted_authors | {user_id}) - self.users.keys()
            self.users.update(cards_by_id(self.session, missing))
        return self.users.get(user_id)
