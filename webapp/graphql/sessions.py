"""GraphQL sessions: where the caller is signed in, and signing one of them out."""
from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from webapp.auth import services as auth_services
from webapp.extensions import db


@strawberry.type
class Session:
    """A signed-in session: one refresh-token family."""

    id: str
    created_at: datetime
    last_used_at: datetime
    user_agent: str
    ip: str
    current: bool


@strawberry.type
class SessionQuery:
    @strawberry.field(description="The caller's signed-in sessions (one per refresh family), newest first.")
    def sessions(self, info: Info) -> list[Session]:
        viewer = info.context.require_viewer()
        return [Session(**row) for row in auth_services.list_sessions(db.session, viewer, info.context.session_id)]


@strawberry.type
class SessionMutation:
    @strawberry.mutation(description="Sign one of the caller's sessions out at once.")
    def revoke_session(self, info: Info, id: str) -> bool:
        viewer = info.context.require_viewer()
        auth_services.revoke_session(db.session, viewer, id)
        return True
