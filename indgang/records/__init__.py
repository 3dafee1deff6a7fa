"""Durable records in SQL (SQLAlchemy 2, Alembic): what must outlive a Redis flush. Redis stays
the session store (trackers, transcripts, handoff state, limits, queues)."""
