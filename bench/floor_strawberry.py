"""The strawberry floor: a bare sync GraphQL view answering `{ hello }`."""
import strawberry
from flask import Flask
from strawberry.flask.views import GraphQLView


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"


app = Flask(__name__)
app.add_url_rule("/graphql", view_func=GraphQLView.as_view("graphql", schema=strawberry.Schema(Query),
                                                           graphql_ide=None))
