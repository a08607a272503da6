"""Every model imported in one place, so alembic and tests see the whole schema."""
from webapp.accounts.models import AccountToken  # noqa: F401
from webapp.auth.models import AuthSession  # noqa: F401
from webapp.db import Base
from webapp.events.models import StoredEvent  # noqa: F401
from webapp.jobs.models import Job  # noqa: F401
from webapp.mail.models import SentEmail  # noqa: F401
from webapp.mfa.models import MfaChallenge, RecoveryCode, TotpCredential  # noqa: F401
from webapp.oidc.models import OidcExchangeCode, OidcLoginState, UserIdentity  # noqa: F401
from webapp.outbox.models import OutboxTask  # noqa: F401
from webapp.pats.models import PersonalAccessToken  # noqa: F401
from webapp.idempotency.models import IdempotencyKey  # noqa: F401
from webapp.posts.models import Post  # noqa: F401
from webapp.users.models import Profile, User  # noqa: F401

metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Leave the PostgreSQL-only trigram indexes (`*_trgm`, made by migration 0003) out of autogenerate.

    They are expression/GIN indexes that exist on PostgreSQL only, so they are not declared on the
    models (SQLite would get a plain copy); without this hook autogenerate would propose dropping them.
    """
    return not (type_ == "index" and name and name.endswith("_trgm"))
