"""Every model imported in one place, so alembic and tests see the whole schema."""
from webapp.accounts.models import AccountToken  # noqa: F401
from webapp.auth.models import AuthSession  # noqa: F401
from webapp.db import Base
from webapp.jobs.models import Job  # noqa: F401
from webapp.mail.models import SentEmail  # noqa: F401
from webapp.idempotency.models import IdempotencyKey  # noqa: F401
from webapp.posts.models import Post  # noqa: F401
from webapp.users.models import Profile, User  # noqa: F401

metadata = Base.metadata
