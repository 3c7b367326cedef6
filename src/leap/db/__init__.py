"""Persistence: models, engine, the tenancy guard and repositories."""
