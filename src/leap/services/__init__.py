"""Services: orchestrate repositories and providers for one use case; they never commit."""
