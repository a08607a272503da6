"""The stack floor: the least an authenticated `me` can cost on Delta's libraries.

REST: a flask-smorest MethodView with a marshmallow response schema, flask-jwt-extended's
verification, and one SQLAlchemy Core statement joining users to auth_sessions on a pooled
psycopg connection. GraphQL: a strawberry sync view doing the same verification and statement.
No logging, metrics, limits, cache or headers: what Delta adds on top is what `make bench`
measures against this. It reads Delta's own tables and verifies Delta's own tokens
(DATABASE_URL, JWT_SECRET_KEY), so both answer the same request for the same user.
"""
from __future__ import annotations

import os

import marshmallow as ma
import strawberry
from flask import Flask, abort
from flask.views import MethodView
from flask_jwt_extended import JWTManager, get_jwt, verify_jwt_in_request
from flask_smorest import Api, Blueprint
from sqlalchemy import create_engine, text
from strawberry.flask.views import GraphQLView

ME = text(
    "SELECT users.id, users.name, users.email, users.role, users.created_at FROM users "
    "JOIN auth_sessions ON auth_sessions.user_id = users.id "
    "WHERE users.id = :user_id AND auth_sessions.id = :sid AND auth_sessions.revoked_at IS NULL"
)

app = Flask(__name__)
app.config.update(API_TITLE="floor", API_VERSION="v1", OPENAPI_VERSION="3.0.3",
                  JWT_SECRET_KEY=os.environ["JWT_SECRET_KEY"], JWT_ALGORITHM="HS256")
engine = create_engine(os.environ["DATABASE_URL"], pool_size=5, pool_pre_ping=False)
JWTManager(app)
api = Api(app)
blp = Blueprint("users", __name__)


def me_row():
    verify_jwt_in_request()
    claims = get_jwt()
    with engine.connect() as connection:
        return connection.execute(ME, {"user_id": int(claims["sub"]), "sid": claims["sid"]}).mappings().first()


class UserSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    email = ma.fields.String()
    role = ma.fields.String()
    created_at = ma.fields.DateTime()


@blp.route("/users/me")
class Me(MethodView):
    @blp.response(200, UserSchema)
    def get(self):
        row = me_row()
        if row is None:
            abort(401)
        return row


api.register_blueprint(blp, url_prefix="/api/v1")


@strawberry.type
class User:
    id: int
    name: str


@strawberry.type
class Query:
    @strawberry.field
    def me(self) -> User | None:
        row = me_row()
        return User(id=row["id"], name=row["name"]) if row is not None else None


app.add_url_rule("/graphql", view_func=GraphQLView.as_view("graphql", schema=strawberry.Schema(Query),
                                                           graphql_ide=None))
