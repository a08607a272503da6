"""the task outbox, and a heartbeat for running jobs

`outbox_tasks`: each email or task a write asks for, committed with the write and handed to the
broker after it (webapp/outbox). `jobs.heartbeat_at`: beaten by the worker running the job, so a
job whose worker died is found and queued again (webapp/jobs/stalls.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 18:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox_tasks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('task', sa.String(length=100), nullable=False),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.Column('request_id', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_tasks')),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('outbox_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_tasks_sent_at', ['sent_at'], unique=False)
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Dropping a column rebuilds the SQLite table: keep AUTOINCREMENT (migration 0004).
    with op.batch_alter_table('jobs', schema=None, table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.drop_column('heartbeat_at')
    with op.batch_alter_table('outbox_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_tasks_sent_at')
    op.drop_table('outbox_tasks')
