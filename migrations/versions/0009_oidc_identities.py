"""OpenID Connect identities linked to users, and the short-lived secrets of a sign-in

`user_identities`: a provider's account (`provider`, `subject`: unique together) linked to a user.
`oidc_login_states`: an authorization request in flight, found by the SHA-256 of its `state`.
`oidc_exchange_codes`: the one-time code handed to the app, by its SHA-256 (webapp/oidc).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 20:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('user_identities',
    sa.Column('id', BigId, nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('user_id', BigId, nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_identities_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_identities')),
    sa.UniqueConstraint('provider', 'subject', name=op.f('uq_user_identities_provider')),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('user_identities', schema=None) as batch_op:
        batch_op.create_index('ix_user_identities_user_id', ['user_id'], unique=False)
    op.create_table('oidc_login_states',
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('code_verifier', sa.String(length=128), nullable=False),
    sa.Column('redirect_uri', sa.String(length=2048), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('state_hash', name=op.f('pk_oidc_login_states')),
    )
    with op.batch_alter_table('oidc_login_states', schema=None) as batch_op:
        batch_op.create_index('ix_oidc_login_states_expires_at', ['expires_at'], unique=False)
    op.create_table('oidc_exchange_codes',
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', BigId, nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_oidc_exchange_codes_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('code_hash', name=op.f('pk_oidc_exchange_codes')),
    )
    with op.batch_alter_table('oidc_exchange_codes', schema=None) as batch_op:
        batch_op.create_index('ix_oidc_exchange_codes_expires_at', ['expires_at'], unique=False)
        batch_op.create_index('ix_oidc_exchange_codes_user_id', ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('oidc_exchange_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_oidc_exchange_codes_user_id')
        batch_op.drop_index('ix_oidc_exchange_codes_expires_at')
    op.drop_table('oidc_exchange_codes')
    with op.batch_alter_table('oidc_login_states', schema=None) as batch_op:
        batch_op.drop_index('ix_oidc_login_states_expires_at')
    op.drop_table('oidc_login_states')
    with op.batch_alter_table('user_identities', schema=None) as batch_op:
        batch_op.drop_index('ix_user_identities_user_id')
    op.drop_table('user_identities')
