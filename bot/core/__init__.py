"""The dialogue engine: trackers, policies, actions, the turn processor and stores."""
