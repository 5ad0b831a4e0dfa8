"""Customer channels: REST (Rasa-compatible, anonymous) and the app (signed identity)."""
