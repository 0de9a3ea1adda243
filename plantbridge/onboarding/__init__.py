"""Onboarding a site: a plant file from a template (`plantbridge plant new`), checked against the live
systems before the worker takes it (`plantbridge plant check`)."""
