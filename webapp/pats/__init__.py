"""Personal access tokens: long-lived, scoped bearer tokens a user makes for scripts and integrations."""
