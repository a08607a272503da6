"""TOTP two-factor sign-in: seeds, recovery codes and pending sign-ins

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 20:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('totp_credentials',
    sa.Column('user_id', BIG_ID, nullable=False),
    sa.Column('secret', sa.String(length=255), nullable=False),
    sa.Column('last_step', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('enabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_totp_credentials_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_totp_credentials'))
    )
    op.create_table('mfa_recovery_codes',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('user_id', BIG_ID, nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_mfa_recovery_codes_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mfa_recovery_codes')),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('mfa_recovery_codes', schema=None) as batch_op:
        batch_op.create_index('ix_mfa_recovery_codes_user_id_code_hash', ['user_id', 'code_hash'], unique=True)
    op.create_table('mfa_challenges',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', BIG_ID, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_mfa_challenges_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mfa_challenges'))
    )
    with op.batch_alter_table('mfa_challenges', schema=None) as batch_op:
        batch_op.create_index('ix_mfa_challenges_user_id', ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mfa_challenges', schema=None) as batch_op:
        batch_op.drop_index('ix_mfa_challenges_user_id')
    op.drop_table('mfa_challenges')
    with op.batch_alter_table('mfa_recovery_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_mfa_recovery_codes_user_id_code_hash')
    op.drop_table('mfa_recovery_codes')
    op.drop_table('totp_credentials')
