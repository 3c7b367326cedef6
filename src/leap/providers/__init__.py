"""Provider clients: each takes an injected httpx.Client and a base URL from settings."""
