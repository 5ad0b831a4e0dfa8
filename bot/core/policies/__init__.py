"""Dialogue policies, declared by name under ``policies:`` in config.yml."""
