"""The list floors (issue 22): what Delta's list reads cost on its libraries alone, nothing of Delta's.

GraphQL: strawberry's sync Flask view building the nested list and the post list from objects in
memory — no database, no auth, no middleware, no extensions. The objects are read once, on the
first request, from Delta's own tables (DATABASE_URL), so the floor answers exactly what Delta
answers for the bench's data (every seeded post is published, so every viewer sees them all).
REST: a flask-smorest MethodView with its query arguments (webargs), a marshmallow response
schema and one SQLAlchemy Core statement joining 20 posts to their authors on a pooled
connection; Delta's posts page is compared with it (both anonymous).
"""
from __future__ import annotations

import functools
import os

import marshmallow as ma
import strawberry
from flask import Flask
from flask.views import MethodView
from flask_smorest import Api, Blueprint
from sqlalchemy import create_engine, text
from strawberry.flask.views import GraphQLView

NEWEST_FIRST = "ORDER BY posts.created_at DESC, posts.id DESC"
PAGE = text(
    "SELECT posts.id, posts.title, posts.content, posts.published, posts.created_at, posts.updated_at, "
    "posts.author_id, users.name AS author_name FROM posts JOIN users ON users.id = posts.author_id "
    f"WHERE posts.published {NEWEST_FIRST} LIMIT :limit"
)
engine = create_engine(os.environ["DATABASE_URL"], pool_size=5, pool_pre_ping=False)


@strawberry.type
class Profile:
    first_name: str


@strawberry.type
class Post:
    title: str
    author: "User"


@strawberry.type
class User:
    name: str
    profile: Profile
    all_posts: strawberry.Private[list]

    @strawberry.field
    def posts(self, limit: int = 20) -> list[Post]:
        return self.all_posts[:limit]


@functools.cache
def memory() -> tuple[list[User], list[Post]]:
    """Every user (id order) with their published posts (newest first), and every post, in memory."""
    with engine.connect() as connection:
        users = {row.id: User(name=row.name, profile=Profile(first_name=row.first_name), all_posts=[])
                 for row in connection.execute(text(
                     "SELECT users.id, users.name, profiles.first_name FROM users "
                     "JOIN profiles ON profiles.user_id = users.id ORDER BY users.id"))}
        posts = []
        for row in connection.execute(text(f"SELECT author_id, title FROM posts WHERE published {NEWEST_FIRST}")):
            post = Post(title=row.title, author=users[row.author_id])
            users[row.author_id].all_posts.append(post)
            posts.append(post)
    return list(users.values()), posts


@strawberry.type
class Query:
    @strawberry.field
    def users(self, limit: int = 20) -> list[User]:
        return memory()[0][:limit]

    @strawberry.field
    def posts(self, limit: int = 20) -> list[Post]:
        return memory()[1][:limit]


class ListArgs(ma.Schema):
    page_size = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))


class AuthorSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()


class PostSchema(ma.Schema):
    id = ma.fields.Integer()
    title = ma.fields.String()
    content = ma.fields.String()
    published = ma.fields.Boolean()
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
    author_id = ma.fields.Integer()
    author = ma.fields.Nested(AuthorSchema)


app = Flask(__name__)
app.config.update(API_TITLE="floor", API_VERSION="v1", OPENAPI_VERSION="3.0.3")
api = Api(app)
blp = Blueprint("posts", __name__)


@blp.route("/posts")
class Posts(MethodView):
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, PostSchema(many=True))
    def get(self, args):
        with engine.connect() as connection:
            rows = connection.execute(PAGE, {"limit": args["page_size"]}).mappings().all()
        return [{**row, "author": {"id": row["author_id"], "name": row["author_name"]}} for row in rows]


api.register_blueprint(blp, url_prefix="/api/v1")
app.add_url_rule("/graphql", view_func=GraphQLView.as_view("graphql", schema=strawberry.Schema(Query),
                                                           graphql_ide=None))
