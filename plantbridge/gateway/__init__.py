"""HTTP ingress (FastAPI): ERP events and IDocs, plant events, the supervisor API."""
