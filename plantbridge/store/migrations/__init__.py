"""Alembic migrations of the store (ledger, audit, inbox, API keys). Run them with `plantbridge store upgrade`."""
