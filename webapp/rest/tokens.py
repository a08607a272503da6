"""/api/v1/users/me/tokens and /users/{id}/tokens: personal access tokens, the caller's and (admins) anyone's."""
from __future__ import annotations

from flask.views import MethodView

from webapp.extensions import db
from webapp.pats import services
from webapp.rest.common import Blueprint, authenticated, operation, viewer
from webapp.rest.schemas.tokens import (
    NewPersonalAccessTokenSchema,
    PersonalAccessTokenCreateSchema,
    PersonalAccessTokenSchema,
)

PREFIX = "/users"
blp = Blueprint("tokens", __name__, description="Personal access tokens for scripts and integrations.")
SIGNED_IN = (403, "Asked with a personal access token: tokens are managed from a signed-in session.")


@blp.route("/me/tokens")
class MyTokens(MethodView):
    @operation(blp, "listMyTokens", SIGNED_IN)
    @authenticated(blp)
    @blp.response(200, PersonalAccessTokenSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters):
        """The caller's personal access tokens, newest first

        Never a token's secret: `prefix` tells them apart, `last_used_at` says which are in use
        (updated at most once a minute). Paged with `page` and `page_size`; `X-Pagination` carries the totals.
        """
        return _page(viewer().id, pagination_parameters)

    @operation(blp, "createToken", SIGNED_IN, (409, "The caller holds the most tokens allowed (PAT_MAX_PER_USER)."))
    @authenticated(blp)
    @blp.arguments(PersonalAccessTokenCreateSchema)
    @blp.response(201, NewPersonalAccessTokenSchema)
    def post(self, data):
        """Make a personal access token; the answer holds it, shown this once

        `read` tokens may only read: every write answers 403. `write` tokens act as the user. No
        token can manage tokens, the password, MFA or sessions.
        """
        token, plaintext = services.create_token(db.session, viewer(), **data)
        return {**services.token_view(token), "token": plaintext}


@blp.route("/me/tokens/<int:token_id>")
class MyToken(MethodView):
    @operation(blp, "deleteMyToken", SIGNED_IN)
    @authenticated(blp)
    @blp.response(204)
    def delete(self, token_id):
        """Revoke one of the caller's tokens

        The token stops working on the very next request, on every host. Another user's token id is 404.
        """
        services.revoke_token(db.session, viewer(), viewer().id, token_id)


@blp.route("/<int:user_id>/tokens")
class UserTokens(MethodView):
    @operation(blp, "listUserTokens", SIGNED_IN)
    @authenticated(blp)
    @blp.response(200, PersonalAccessTokenSchema(many=True))
    @blp.paginate()
    def get(self, user_id, pagination_parameters):
        """A user's personal access tokens

        The user themself or an admin; anyone else is told the user does not exist (404). Paged as
        `listMyTokens`.
        """
        return _page(user_id, pagination_parameters)


@blp.route("/<int:user_id>/tokens/<int:token_id>")
class UserToken(MethodView):
    @operation(blp, "deleteUserToken", SIGNED_IN)
    @authenticated(blp)
    @blp.response(204)
    def delete(self, user_id, token_id):
        """Revoke a user's personal access token

        The user themself or an admin; anyone else gets 404. It stops working at once, on every host.
        """
        services.revoke_token(db.session, viewer(), user_id, token_id)


def _page(user_id: int, pagination_parameters) -> list[dict]:
    page = services.list_tokens(db.session, viewer(), user_id, offset=pagination_parameters.first_item,
                                limit=pagination_parameters.page_size)
    pagination_parameters.item_count = page.total
    return [services.token_view(token) for token in page.items]
