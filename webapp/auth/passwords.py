"""argon2id password hashing, with a dummy hash so unknown emails cost the same time.

Every hash and verification of a process runs on a small pool of hashing threads, one per core
(HASHING_THREADS). argon2id is memory-hard: each run fills ARGON2_MEMORY_KIB (19 MiB) of memory,
more than a core's share of the last-level cache. With a gthread worker's four request threads
hashing at once, a 2-core machine ran eight 19 MiB fills side by side, each from a different
thread's malloc arena, cold; on a few long-lived threads they queue instead and reuse warm pages.
One thread per process was tried and not kept: gunicorn does not spread connections evenly, and a
worker that held every connection then hashed on one core while the other idled (login runs at
half the argon2id floor in 2 rounds of 5, bench/run.py --only login). One thread per core keeps
every core busy whichever worker the connections land on, and the memory a login flood can claim
is bounded by the cores, not by the request threads.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

HASHING_THREADS = os.cpu_count() or 1


class Passwords:
    def __init__(self):
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
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

    def _on_hashing_thread(self, function, *args):
        """Run `function` on one of this process's hashing threads and wait (a forked child starts its own)."""
        if self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(max_workers=HASHING_THREADS, thread_name_prefix="argon2")
            self._pool_pid = os.getpid()
        return self._pool.submit(function, *args).result()

    def hash(self, password: str) -> str:
        return self._on_hashing_thread(self._hasher.hash, password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Check `password`; with no stored hash, burn the same time and say no."""
        try:
            return self._on_hashing_thread(self._hasher.verify, stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)


passwords = Passwords()
