"""MES stand-in ("LineControl MES", REST API v2): see ``app.py`` for the API."""
