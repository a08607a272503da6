"""/api/v1/users/{id}/profile and /avatar: read with any token, write as that user or an admin."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView

from webapp.extensions import db
from webapp.profiles import services
from webapp.rest.common import Blueprint, authenticated, only_files, operation, viewer
from webapp.rest.schemas.profiles import AvatarUploadSchema, ProfilePatchSchema, ProfileSchema
from webapp.users.services import get_user, profile_view

PREFIX = "/users"
blp = Blueprint("profiles", __name__, description="Profiles and avatars.")


@blp.route("/<int:user_id>/profile")
class ProfileById(MethodView):
    @operation(blp, "getProfile")
    @authenticated(blp)
    @blp.etag
    @blp.response(200, ProfileSchema)
    def get(self, user_id):
        """A user's profile, with avatar URLs

        Any signed-in user may read any profile.
        """
        return profile_view(services.read_profile(db.session, viewer(), user_id))

    @operation(blp, "updateProfile", (403, "Not this user or an admin."), 412)
    @authenticated(blp)
    @blp.etag
    @blp.arguments(ProfilePatchSchema, required=False)
    @blp.response(200, ProfileSchema)
    def patch(self, data, user_id):
        """Change first_name, last_name or bio (the user themself or an admin)

        Fields left out keep their value. Send the ETag you read as `If-Match` to refuse (412) a
        change made since.
        """
        user = get_user(db.session, user_id)
        blp.check_etag(profile_view(user.profile), ProfileSchema)
        return profile_view(services.update_profile(db.session, viewer(), user, data))


@blp.route("/<int:user_id>/avatar")
class Avatar(MethodView):
    @operation(blp, "uploadAvatar", (403, "Not this user or an admin."), (413, "Larger than 5 MiB."),
               (415, "Not a PNG, JPEG or WebP image (judged by content)."))
    @authenticated(blp)
    @blp.arguments(AvatarUploadSchema, location="files")
    @blp.response(200, ProfileSchema)
    def put(self, files, user_id):
        """Upload an avatar (multipart field `file`); 64 and 256 px thumbnails follow from a background task

        The image is re-encoded; the answer is the profile with the new `avatar_url`, and
        `avatar_thumbnails` fills in once the task has run.
        """
        only_files()
        upload = files["file"]
        data = upload.stream.read(current_app.config["MAX_AVATAR_BYTES"] + 1)
        user = get_user(db.session, user_id)
        return profile_view(services.set_avatar(db.session, viewer(), user, data))
