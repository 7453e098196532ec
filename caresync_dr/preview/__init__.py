"""Offline preview: what the program would create, without credentials, as a reviewable snapshot."""
