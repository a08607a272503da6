"""Email: SMTP in production, `.eml` files in the outbox on the embedded default; sent at most once."""
