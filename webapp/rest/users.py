"""/api/v1/users: sign-up, the caller's own account, the directory, edits and deletion."""
from __future__ import annotations

from flask.views import MethodView

from webapp.extensions import db
from webapp.rest.common import Blueprint, authenticated, client_facts, viewer
from webapp.rest.schemas.users import SignupSchema, UserListArgs, UserPatchSchema, UserPutSchema, UserSchema
from webapp.users import services

PREFIX = "/users"
blp = Blueprint("users", __name__, description="Users: sign-up, profiles of the directory, account edits.")


@blp.route("")
class Users(MethodView):
    @blp.arguments(SignupSchema)
    @blp.response(201, UserSchema)
    def post(self, data):
        """Sign up; a verification email is queued"""
        user = services.create_user(db.session, **data, ip=client_facts()["ip"])
        return services.user_view(user, user)

    @authenticated(blp)
    @blp.etag
    @blp.arguments(UserListArgs, location="query")
    @blp.response(200, UserSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List users (public views), searchable and sortable"""
        me = viewer()
        page = services.list_users(
            db.session, me, q=args.get("q"), sort=args["sort"],
            offset=pagination_parameters.first_item, limit=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = page.total
        return [services.user_view(me, user) for user in page.items]


@blp.route("/me")
class Me(MethodView):
    @authenticated(blp)
    @blp.etag
    @blp.response(200, UserSchema)
    def get(self):
        """The signed-in user's private view"""
        me = viewer()
        return services.user_view(me, me)


@blp.route("/<int:user_id>")
class UserById(MethodView):
    @authenticated(blp)
    @blp.etag
    @blp.response(200, UserSchema)
    def get(self, user_id):
        """One user: private view for themself and admins, public otherwise"""
        me = viewer()
        return services.user_view(me, services.user_card(db.session, me, user_id))

    @authenticated(blp)
    @blp.etag
    @blp.arguments(UserPutSchema)
    @blp.response(200, UserSchema)
    def put(self, data, user_id):
        """Replace name and email (and, for admins, role and is_active)"""
        me, user = viewer(), _checked_user(user_id)
        return services.user_view(me, services.update_user(db.session, me, user, data, replace=True))

    @authenticated(blp)
    @blp.etag
    @blp.arguments(UserPatchSchema, required=False)
    @blp.response(200, UserSchema)
    def patch(self, data, user_id):
        """Change some of name, email (re-verified), role and is_active (admins only)"""
        me, user = viewer(), _checked_user(user_id)
        return services.user_view(me, services.update_user(db.session, me, user, data))

    @authenticated(blp)
    @blp.etag
    @blp.response(204)
    def delete(self, user_id):
        """Delete a user with their profile and posts; their tokens stop working"""
        services.delete_user(db.session, viewer(), _checked_user(user_id))


def _checked_user(user_id):
    """The user to change, after If-Match (when sent) matched the representation this viewer reads."""
    user = services.get_user(db.session, user_id)
    blp.check_etag(services.user_view(viewer(), user), UserSchema)
    return user
