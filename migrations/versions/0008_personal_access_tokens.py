"""personal access tokens

`personal_access_tokens`: a user's long-lived bearer tokens for scripts (webapp/pats): the public
`lookup` part of the token under a unique index, the SHA-256 of its secret, scopes and lifetimes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 20:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('personal_access_tokens',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lookup', sa.String(length=16), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('scopes', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_personal_access_tokens_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_personal_access_tokens')),
    sa.UniqueConstraint('lookup', name=op.f('uq_personal_access_tokens_lookup')),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('personal_access_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_personal_access_tokens_user_id', ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('personal_access_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_personal_access_tokens_user_id')
    op.drop_table('personal_access_tokens')
