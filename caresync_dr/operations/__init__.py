"""The operation engine (placeholder docstring, replaced below)."""
