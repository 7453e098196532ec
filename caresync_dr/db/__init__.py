"""The CareSync database's own contract: its credentials (Secrets Manager) and its roles."""
