"""Portable logical backups: dump, encrypt, store, prune, restore, verify, restore-test."""
