"""/api/v1/users: sign-up, the caller's own account, the directory, edits and deletion."""
from __future__ import annotations

from flask.views import MethodView

from webapp.extensions import db
from webapp.rest.common import Blueprint, authenticated, client_facts, operation, viewer
from webapp.rest.schemas.users import SignupSchema, UserListArgs, UserPatchSchema, UserPutSchema, UserSchema
from webapp.users import services

PREFIX = "/users"
blp = Blueprint("users", __name__, description="Users: sign-up, profiles of the directory, account edits.")


@blp.route("")
class Users(MethodView):
    @operation(blp, "createUser", (409, "An account with this email address exists."))
    @blp.arguments(SignupSchema)
    @blp.response(201, UserSchema)
    def post(self, data):
        """Sign up; a verification email is queued

        Answers the new user's private view. Sign in with `login`; writing posts needs the address
        verified (`verifyEmail`). Sign-ups are rate limited per caller (429).
        """
        user = services.create_user(db.session, **data, ip=client_facts()["ip"])
        return services.user_view(user, user)

    @operation(blp, "listUsers")
    @authenticated(blp)
    @blp.etag
    @blp.arguments(UserListArgs, location="query")
    @blp.response(200, UserSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List users (public views), searchable and sortable

        Admins see private views and `q` also matches an email prefix for them. Paged with `page`
        and `page_size`; `X-Pagination` carries the totals.
        """
        me = viewer()
        page = services.list_users(
            db.session, me, q=args.get("q"), sort=args["sort"],
            offset=pagination_parameters.first_item, limit=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = page.total
        return [services.user_view(me, user) for user in page.items]


@blp.route("/me")
class Me(MethodView):
    @operation(blp, "getCurrentUser")
    @authenticated(blp)
    @blp.etag
    @blp.response(200, UserSchema)
    def get(self):
        """The signed-in user's private view

        With email, `is_active`, `email_verified` and `updated_at`.
        """
        me = viewer()
        return services.user_view(me, me)


@blp.route("/<int:user_id>")
class UserById(MethodView):
    @operation(blp, "getUser")
    @authenticated(blp)
    @blp.etag
    @blp.response(200, UserSchema)
    def get(self, user_id):
        """One user: private view for themself and admins, public otherwise

        The public view has id, name, role, created_at and profile.
        """
        me = viewer()
        return services.user_view(me, services.user_card(db.session, me, user_id))

    @operation(blp, "replaceUser", (403, "Not this user or an admin, or a non-admin sent role or is_active."),
               (409, "The email address is taken, or the change would leave no active admin."), 412)
    @authenticated(blp)
    @blp.etag
    @blp.arguments(UserPutSchema)
    @blp.response(200, UserSchema)
    def put(self, data, user_id):
        """Replace name and email (and, for admins, role and is_active)

        The user themself or an admin. A changed email must be verified again. Send the ETag you
        read as `If-Match` to refuse (412) a change made since.
        """
        me, user = viewer(), _checked_user(user_id)
        return services.user_view(me, services.update_user(db.session, me, user, data, replace=True))

    @operation(blp, "updateUser", (403, "Not this user or an admin, or a non-admin sent role or is_active."),
               (409, "The email address is taken, or the change would leave no active admin."), 412)
    @authenticated(blp)
    @blp.etag
    @blp.arguments(UserPatchSchema, required=False)
    @blp.response(200, UserSchema)
    def patch(self, data, user_id):
        """Change some of name, email (re-verified), role and is_active (admins only)

        The user themself or an admin; fields left out keep their value. Send the ETag you read
        as `If-Match` to refuse (412) a change made since.
        """
        me, user = viewer(), _checked_user(user_id)
        return services.user_view(me, services.update_user(db.session, me, user, data))

    @operation(blp, "deleteUser", (403, "Not this user or an admin."), (409, "The last admin cannot be deleted."), 412)
    @authenticated(blp)
    @blp.etag
    @blp.response(204)
    def delete(self, user_id):
        """Delete a user with their profile and posts; their tokens stop working

        The user themself or an admin. Send the ETag you read as `If-Match` to refuse (412) if
        the user changed since.
        """
        services.delete_user(db.session, viewer(), _checked_user(user_id))


def _checked_user(user_id):
    """The user to change, after If-Match (when sent) matched the representation this viewer reads."""
    user = services.get_user(db.session, user_id)
    blp.check_etag(services.user_view(viewer(), user), UserSchema)
    return user
