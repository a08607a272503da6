"""Who may do what: one policy function that both doors and the tasks ask.

A caller signed in with a personal access token (webapp/pats) carries that token's scopes on
the principal (`token_scopes`): a `read` token is refused every write permission, and no
token is ever granted MANAGE_AUTH (tokens, passwords, MFA, sessions), so a leaked script token
cannot entrench itself. Signed-in sessions carry no scopes and are limited by role alone.
"""
from __future__ import annotations

from enum import Enum

from webapp.errors import Forbidden, Unauthenticated


class Permission(str, Enum):
    VIEW_USERS = "user:view"             # the directory, public views and profiles: anyone signed in
    VIEW_PRIVATE = "user:view-private"   # email, is_active, email_verified, updated_at (no object: everyone's)
    EDIT_USER = "user:edit"
    DELETE_USER = "user:delete"
    MANAGE_USERS = "user:manage"         # change role / is_active, import and export users
    VIEW_DRAFT = "post:view-draft"
    EDIT_POST = "post:edit"
    CREATE_POST = "post:create"
    VIEW_JOB = "job:view"                # no object: every job
    REQUEST_JOB = "job:request"          # start a job for the object (the account it exports)
    CANCEL_JOB = "job:cancel"
    MANAGE_AUTH = "auth:manage"          # the account's credentials: tokens, password, MFA, sessions


WRITES = frozenset({Permission.EDIT_USER, Permission.DELETE_USER, Permission.MANAGE_USERS, Permission.EDIT_POST,
                    Permission.CREATE_POST, Permission.REQUEST_JOB, Permission.CANCEL_JOB,
                    Permission.MANAGE_AUTH})
READ, WRITE = "read", "write"
SCOPES = (READ, WRITE)
TOKEN_READ_ONLY = "This personal access token has the read scope only: it cannot write."
TOKEN_NO_AUTH = "A personal access token cannot manage tokens, passwords, MFA or sessions; sign in instead."


def _owner_id(obj) -> int | None:
    for attr in ("author_id", "owner_id", "user_id"):
        if hasattr(obj, attr):
            return getattr(obj, attr)
    return getattr(obj, "id", None)


def _token_allows(scopes: frozenset, permission: Permission) -> bool:
    if permission is Permission.MANAGE_AUTH:
        return False
    return permission not in WRITES or WRITE in scopes


def can(actor, permission: Permission, obj=None) -> bool:
    if actor is None:
        return False
    scopes = getattr(actor, "token_scopes", None)  # set on personal-access-token principals only
    if scopes is not None and not _token_allows(scopes, permission):
        return False
    if permission is Permission.VIEW_USERS:
        return True
    if actor.role == "admin":
        return True
    if permission is Permission.MANAGE_USERS:
        return False
    if permission is Permission.CREATE_POST:
        return actor.email_verified is not None
    return obj is not None and _owner_id(obj) == actor.id


def require(actor, permission: Permission, obj=None, message: str | None = None) -> None:
    """Raise Unauthenticated for no actor, Forbidden when the policy says no (and why, when a token's scope is)."""
    if actor is None:
        raise Unauthenticated()
    if not can(actor, permission, obj):
        scopes = getattr(actor, "token_scopes", None)
        if scopes is not None and not _token_allows(scopes, permission):
            raise Forbidden(TOKEN_NO_AUTH if permission is Permission.MANAGE_AUTH else TOKEN_READ_ONLY)
        raise Forbidden(message)
