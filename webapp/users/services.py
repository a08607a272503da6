"""Users: sign-up, reads with visibility, updates with permission checks, deletion."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import Select, bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp import caching, validation
from webapp.accounts import services as accounts
from webapp.auth import services as auth_services
from webapp.auth.passwords import passwords
from webapp.auth.permissions import Permission, can, require
from webapp.db import MAX_ID, utcnow
from webapp.errors import Conflict, Forbidden, Invalid, NotFound
from webapp.guard import guard
from webapp.pagination import DEFAULT_PAGE_SIZE
from webapp.users.models import ROLES, Profile, User

PRIVATE_FIELDS = ("email", "is_active", "email_verified", "updated_at")
ADMIN_FIELDS = ("role", "is_active")
SORTS = {
    "id": User.id, "name": User.name, "created_at": User.created_at,
}
EMAIL_TAKEN = "A user with this email already exists."
USER_COLUMNS = tuple(c.name for c in User.__table__.columns if c.name != "password_hash")
PROFILE_COLUMNS = tuple(c.name for c in Profile.__table__.columns)


@dataclass
class Page:
    items: list
    total: int


def sees_private(viewer: User | None, user: User) -> bool:
    return can(viewer, Permission.VIEW_PRIVATE, user)


def create_user(session: Session, *, name: str, email: str, password: str, role: str = "user",
                ip: str | None = None, verified: bool = False) -> User:
    """Sign a user up; `ip` (from either door) is counted against the sign-up limit.

    `verified` is for the operator's own accounts (create-admin, seed): the address counts as
    confirmed at once, so no "verify your address" email is sent.
    """
    if ip is not None:
        guard().hit("RATELIMIT_SIGNUP_IP", ip)
    fields = {}
    validation.collect({
        "name": lambda: fields.__setitem__("name", validation.name(name)),
        "email": lambda: fields.__setitem__("email", validation.email(email)),
        "password": lambda: validation.password(password),
    })
    if session.scalar(select(User.id).where(User.email == fields["email"])) is not None:
        raise Conflict(EMAIL_TAKEN, errors={"email": [EMAIL_TAKEN]})
    user = User(name=fields["name"], email=fields["email"], role=role,
                password_hash=passwords.hash(password), profile=Profile(),
                email_verified=utcnow() if verified else None)
    session.add(user)
    try:
        session.flush()
        if not verified:
            accounts.send_token(accounts.issue_token(session, user, accounts.VERIFY_EMAIL))  # the outbox
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(EMAIL_TAKEN, errors={"email": [EMAIL_TAKEN]}) from None
    return user


def get_user(session: Session, user_id) -> User:
    try:
        user_id = int(user_id)
    except (TypeError, ValueError):
        raise NotFound("User not found.") from None
    user = session.get(User, user_id) if 0 < user_id <= MAX_ID else None
    if user is None:
        raise NotFound("User not found.")
    return user


def user_card(session: Session, viewer: User | None, user_id):
    """A read-only snapshot of a user and profile for views, served from the cache when fresh.

    Users and profiles are read by signed-in callers only (PRODUCT.md): asked of `can()` here,
    so every door and task gets the same answer.
    """
    require(viewer, Permission.VIEW_USERS)

    def load():
        user = get_user(session, user_id)
        profile = SimpleNamespace(**{c: getattr(user.profile, c) for c in PROFILE_COLUMNS}) \
            if user.profile is not None else None
        return SimpleNamespace(**{c: getattr(user, c) for c in USER_COLUMNS}, profile=profile)

    return caching.cached(f"user:{int(user_id) if str(user_id).isdigit() else 0}", "card", load)


def escape_like(value: str) -> str:
    """`value` matched literally by LIKE/ILIKE with `escape="\\"`: its %, _ and \\ escaped."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def users_query(viewer: User, *, q: str | None = None, sort: str = "id") -> Select:
    """Users visible in lists, filtered by `q` and ordered by `sort` (`-` for descending)."""
    stmt = select(User)
    if q:
        q = validation.text(q, max_len=100).strip()
        pattern = f"%{escape_like(q.lower())}%"
        clause = func.lower(User.name).like(pattern, escape="\\")
        if can(viewer, Permission.VIEW_PRIVATE):  # no user named: may the viewer see everyone's email?
            clause = or_(clause, User.email.like(f"{escape_like(q.lower())}%", escape="\\"))
        stmt = stmt.where(clause)
    key = sort.lstrip("-")
    if key not in SORTS:
        raise Invalid("Validation failed.", errors={"sort": [f"Must be one of: {', '.join(sorted(SORTS))} (prefix - for descending)."]})
    column = SORTS[key]
    order = column.desc() if sort.startswith("-") else column.asc()
    tiebreak = User.id.desc() if sort.startswith("-") else User.id.asc()
    return stmt.order_by(order, tiebreak) if key != "id" else stmt.order_by(order)


def list_users(session: Session, viewer: User | None, *, q=None, sort="id", offset=0,
               limit=DEFAULT_PAGE_SIZE) -> Page:
    """A page of the directory (signed-in callers only), with its total."""
    require(viewer, Permission.VIEW_USERS)
    stmt = users_query(viewer, q=q, sort=sort)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    items = list(session.scalars(stmt.offset(offset).limit(limit)).unique())
    return Page(items=items, total=total)


def user_cards(session: Session, viewer: User | None, *, q=None, sort="id", offset=0,
               limit=DEFAULT_PAGE_SIZE) -> list[SimpleNamespace]:
    """A page of the directory as read-only snapshots, without a total: what GraphQL lists read."""
    require(viewer, Permission.VIEW_USERS)
    if q:
        return _cards(session, _as_cards(users_query(viewer, q=q, sort=sort)).offset(offset).limit(limit))
    return _cards(session, _directory(sort), {"offset": offset, "limit": limit})


def cards_by_id(session: Session, user_ids) -> dict[int, SimpleNamespace]:
    """Snapshots of these users, as `user_card` makes them (posts' authors: read with the post)."""
    return {card.id: card for card in _cards(session, _BY_ID, {"ids": sorted(user_ids)})}


_CARD_COLUMNS = (*(User.__table__.c[name] for name in USER_COLUMNS),
                 *(Profile.__table__.c[name].label(f"profile_{name}") for name in PROFILE_COLUMNS))
# The same, named apart, for a statement that reads a user beside another row (a post's author,
# joined to users and outer-joined to profiles); `card_of` makes the snapshot from their values.
AUTHOR_COLUMNS = tuple(column.label(f"author__{column.key}") for column in _CARD_COLUMNS)


def _as_cards(stmt: Select) -> Select:
    """`stmt`'s users with their profiles, as plain rows of both: no ORM instance, identity map
    or change tracking per row, which a read never needs."""
    return stmt.with_only_columns(*_CARD_COLUMNS).select_from(User.__table__.outerjoin(Profile.__table__))


@functools.cache
def _directory(sort: str) -> Select:
    """A page of the unfiltered directory in `sort` order, built once per sort (offset and limit bound)."""
    return _as_cards(users_query(None, sort=sort)).offset(bindparam("offset")).limit(bindparam("limit"))


_BY_ID = _as_cards(select(User).where(User.id.in_(bindparam("ids", expanding=True))))


def _cards(session: Session, stmt: Select, params: dict | None = None) -> list[SimpleNamespace]:
    return [card_of(row) for row in session.execute(stmt, params)]


def card_of(values) -> SimpleNamespace:
    """The snapshot `user_card` makes, from the values of the card's columns (or AUTHOR_COLUMNS), in order."""
    split = len(USER_COLUMNS)
    return SimpleNamespace(**dict(zip(USER_COLUMNS, values[:split])), profile=SimpleNamespace(
        **dict(zip(PROFILE_COLUMNS, values[split:]))) if values[split] is not None else None)


def _admin_count(session: Session) -> int:
    """Admins, with their rows locked on PostgreSQL so two demotions cannot race past one."""
    return len(session.scalars(select(User.id).where(User.role == "admin").with_for_update()).all())


def update_user(session: Session, actor: User, user: User, changes: dict, *, replace: bool = False) -> User:
    """Apply `changes` (PUT when `replace`); role and is_active are for admins only."""
    require(actor, Permission.EDIT_USER, user)
    sent_admin_fields = [key for key in ADMIN_FIELDS if key in changes]
    if sent_admin_fields and not can(actor, Permission.MANAGE_USERS):
        raise Forbidden(f"Only admins may change {' and '.join(sent_admin_fields)}.")
    if replace:
        missing = [key for key in ("name", "email") if key not in changes]
        if missing:
            raise Invalid("Validation failed.", errors={key: ["Missing data for required field."] for key in missing})
    clean = {}
    checks = {}
    if "name" in changes:
        checks["name"] = lambda: clean.__setitem__("name", validation.name(changes["name"]))
    if "email" in changes:
        checks["email"] = lambda: clean.__setitem__("email", validation.email(changes["email"]))
    if "role" in changes:
        checks["role"] = lambda: clean.__setitem__("role", _role(changes["role"]))
    if "is_active" in changes:
        checks["is_active"] = lambda: clean.__setitem__("is_active", _flag(changes["is_active"]))
    validation.collect(checks)

    demoting = (clean.get("role", user.role) != "admin" or clean.get("is_active", user.is_active) is False)
    if user.role == "admin" and demoting and _admin_count(session) <= 1:
        raise Conflict("The last admin cannot be demoted or deactivated.")
    if "email" in clean and clean["email"] != user.email:
        if session.scalar(select(User.id).where(User.email == clean["email"], User.id != user.id)):
            raise Conflict(EMAIL_TAKEN, errors={"email": [EMAIL_TAKEN]})
        user.email = clean["email"]
        user.email_verified = None
        accounts.send_token(accounts.issue_token(session, user, accounts.VERIFY_EMAIL))  # the outbox
    for key in ("name", "role", "is_active"):
        if key in clean:
            setattr(user, key, clean[key])
    if clean.get("is_active") is False:
        auth_services.revoke_sessions(session, user.id)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(EMAIL_TAKEN, errors={"email": [EMAIL_TAKEN]}) from None
    return user


def _role(value) -> str:
    if value not in ROLES:
        raise Invalid(f"Must be one of: {', '.join(ROLES)}.")
    return value


def _flag(value) -> bool:
    if not isinstance(value, bool):
        raise Invalid("Not a valid boolean.")
    return value


def delete_user(session: Session, actor: User, user: User) -> None:
    """Delete a user with their profile, posts and sessions; never the last admin."""
    require(actor, Permission.DELETE_USER, user)
    if user.role == "admin" and _admin_count(session) <= 1:
        raise Conflict("The last admin cannot be deleted.")
    auth_services.revoke_sessions(session, user.id)
    session.delete(user)
    session.commit()


def profile_view(profile: Profile | None) -> dict:
    from webapp.profiles.avatars import avatar_urls

    avatar_url, thumbnails = avatar_urls(profile)
    if profile is None:
        return {"first_name": "", "last_name": "", "bio": "", "avatar_url": None, "avatar_thumbnails": []}
    return {"first_name": profile.first_name, "last_name": profile.last_name,
            "bio": profile.bio, "avatar_url": avatar_url, "avatar_thumbnails": thumbnails}


def user_view(viewer: User | None, user: User) -> dict:
    """The fields of `user` that `viewer` may see: the one visibility rule for both doors."""
    body = {"id": user.id, "name": user.name, "role": user.role,
            "created_at": user.created_at, "profile": profile_view(user.profile)}
    if sees_private(viewer, user):
        body.update(email=user.email, is_active=user.is_active,
                    email_verified=user.email_verified, updated_at=user.updated_at)
    return body
