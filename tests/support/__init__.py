"""Helpers shared by the tests: ports, polling, in-process HTTP servers, a recording HTTP transport and
the use-case plant stack (tests/support/plant_stack.py). Fixtures stay in the conftest files."""

from tests.support.http import Call, Recorder
from tests.support.net import ServedApp, free_port, serve_app
from tests.support.polling import eventually

__all__ = ["Call", "Recorder", "ServedApp", "eventually", "free_port", "serve_app"]
