"""/api/v1/users/me/sessions: the caller's signed-in sessions, and signing one out."""
from __future__ import annotations

from flask.views import MethodView

from webapp.auth import services
from webapp.extensions import db
from webapp.rest.common import Blueprint, authenticated, operation, session_id, viewer
from webapp.rest.schemas.sessions import SessionSchema

PREFIX = "/users/me/sessions"
blp = Blueprint("sessions", __name__, description="Where the caller is signed in.")


@blp.route("")
class Sessions(MethodView):
    @operation(blp, "listSessions")
    @authenticated(blp)
    @blp.response(200, SessionSchema(many=True))
    def get(self):
        """The caller's live sessions, one per refresh-token family (at most 100, newest first)

        `current` marks the session of the token making the request.
        """
        return services.list_sessions(db.session, viewer(), session_id())


@blp.route("/<string(length=32):sid>")
class SessionById(MethodView):
    @operation(blp, "deleteSession")
    @authenticated(blp)
    @blp.response(204)
    def delete(self, sid):
        """Sign that session out at once: its access and refresh tokens stop working

        Only the caller's own sessions; any other id is 404.
        """
        services.revoke_session(db.session, viewer(), sid)
