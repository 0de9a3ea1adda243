"""WMS stand-in ("StockPilot WMS"): see ``app.py`` for the API."""
