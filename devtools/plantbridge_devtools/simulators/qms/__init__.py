"""QMS stand-in ("QualityHub QMS", REST v1): see ``app.py`` for the API."""
