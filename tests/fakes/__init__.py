"""Fakes of the external services LEAP talks to: in-memory state plus an httpx request handler,
served by httpx.MockTransport in unit tests or by a real local server (server.serve)."""
