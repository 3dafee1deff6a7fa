"""Tovholdere and bookings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_CONFIRMED = sa.text("state = 'confirmed'")


def upgrade() -> None:
    op.create_table(
        "tovholdere",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "bookings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("conversation_id", sa.String(length=80), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("phone_hash", sa.String(length=128), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("for_whom", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("tovholder_id", sa.String(length=40), nullable=False),
        sa.Column("tovholder_name", sa.String(length=40), nullable=False),
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("moved_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.String(length=10), nullable=True),
        sa.Column("no_show", sa.Boolean(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("keep_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_bookings_conversation_id", "bookings", ["conversation_id"])
    op.create_index("ix_bookings_phone_hash", "bookings", ["phone_hash"])
    op.create_index("ix_bookings_tovholder_id", "bookings", ["tovholder_id"])
    op.create_index("ix_bookings_starts_at", "bookings", ["starts_at"])
    op.create_index("ix_bookings_keep_until", "bookings", ["keep_until"])
    op.create_index(
        "uq_bookings_confirmed_slot",
        "bookings",
        ["tovholder_id", "starts_at"],
        unique=True,
        sqlite_where=_CONFIRMED,
        postgresql_where=_CONFIRMED,
    )


def downgrade() -> None:
    op.drop_index("uq_bookings_confirmed_slot", table_name="bookings")
    for column in ("keep_until", "starts_at", "tovholder_id", "phone_hash", "conversation_id"):
        op.drop_index(f"ix_bookings_{column}", table_name="bookings")
    op.drop_table("bookings")
    op.drop_table("tovholdere")
