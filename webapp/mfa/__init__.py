"""Two-factor sign-in with TOTP (RFC 6238): enrolment, the sign-in challenge, recovery codes.

`models` holds the rows, `codes` the cryptography (the encrypted seed, code matching, recovery
code digests), `challenges` what a password login hands out instead of tokens (imported by
webapp/auth/services.py, so it imports nothing of the auth services), and `services` the
operations both doors call.
"""
