"""argon2id password hashing, with a dummy hash so unknown emails cost the same time."""
from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    def __init__(self):
        self.configure(time_cost=2, memory_kib=19 * 1024, parallelism=1)

    def configure(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._dummy = self._hasher.hash("dummy password for timing")

    def init_app(self, app) -> None:
        self.configure(
            time_cost=app.config["ARGON2_TIME_COST"],
            memory_kib=app.config["ARGON2_MEMORY_KIB"],
            parallelism=app.config["ARGON2_PARALLELISM"],
        )

    @property
    def parameters(self) -> dict:
        h = self._hasher
        return {"time_cost": h.time_cost, "memory_kib": h.memory_cost, "parallelism": h.parallelism}

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Check `password`; with no stored hash, burn the same time and say no."""
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)


passwords = Passwords()
