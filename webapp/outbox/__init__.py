"""The task outbox: every email and task a write asks for, stored with the write (webapp/dispatch.py)."""
