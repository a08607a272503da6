"""posts, avatars, idempotency keys and trigram search

Posts with an index per filter and sort; avatar columns on profiles; the idempotency_keys
table. On PostgreSQL only: pg_trgm and GIN trigram indexes for `q` on post titles and user
names (named `*_trgm`, kept out of autogenerate by migrations/env.py); SQLite gets none.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-27 16:39:50.793164
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('idempotency_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('caller', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('body', sa.LargeBinary(), nullable=True),
    sa.Column('headers', sa.Text(), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
    sa.UniqueConstraint('caller', 'key', name='uq_idempotency_keys_caller_key')
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index('ix_idempotency_keys_expires_at', ['expires_at'], unique=False)

    op.create_table('posts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('author_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('content', sa.Text(), server_default='', nullable=False),
    sa.Column('published', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_posts_author_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posts'))
    )
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.create_index('ix_posts_author_id_created_at', ['author_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_posts_created_at', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_posts_published_created_at', ['published', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_posts_title', ['title', 'id'], unique=False)
        batch_op.create_index('ix_posts_updated_at', ['updated_at', 'id'], unique=False)

    with op.batch_alter_table('profiles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('avatar_key', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('avatar_thumbnails', sa.String(length=50), server_default='', nullable=False))

    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX IF NOT EXISTS ix_posts_title_trgm ON posts USING gin (title gin_trgm_ops)")
        op.execute("CREATE INDEX IF NOT EXISTS ix_users_name_trgm ON users USING gin (lower(name) gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_users_name_trgm")
        op.execute("DROP INDEX IF EXISTS ix_posts_title_trgm")  # the extension stays: others may use it
    with op.batch_alter_table('profiles', schema=None) as batch_op:
        batch_op.drop_column('avatar_thumbnails')
        batch_op.drop_column('avatar_key')

    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_index('ix_posts_updated_at')
        batch_op.drop_index('ix_posts_title')
        batch_op.drop_index('ix_posts_published_created_at')
        batch_op.drop_index('ix_posts_created_at')
        batch_op.drop_index('ix_posts_author_id_created_at')

    op.drop_table('posts')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_idempotency_keys_expires_at')

    op.drop_table('idempotency_keys')
