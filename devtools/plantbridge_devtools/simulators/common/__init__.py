"""Shared machinery of the plant-system simulators (MES, QMS, WMS): SQLite state, fault injection,
API-key checks, JSON errors, a threaded uvicorn runner and the common admin routes.

Nothing here knows plantbridge's canonical model: the simulators play foreign systems.
"""
