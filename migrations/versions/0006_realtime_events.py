"""realtime events, written with the write that causes them

`events`: a post becoming public, a job's status or progress, a session revoked; inserted in the
write's own transaction (webapp/events). In the embedded default it is the event store (the row
id is the event id); with Redis its rows wait there until the relay has put them on a stream.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 20:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('topic', sa.String(length=100), nullable=False),
    sa.Column('type', sa.String(length=50), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events')),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_topic_id', ['topic', 'id'], unique=False)
        batch_op.create_index('ix_events_created_at', ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_created_at')
        batch_op.drop_index('ix_events_topic_id')
    op.drop_table('events')
