"""argon2id password hashing, with a dummy hash so unknown emails cost the same time.

Every hash and verification of a process runs on a small pool of hashing threads, sized so that the
host runs as many argon2id at once as it has cores (`hashing_threads`: cores ÷ gunicorn workers,
rounded up; one per process with the default one worker per core). argon2id is memory-hard: each
run fills ARGON2_MEMORY_KIB (19 MiB) of memory, more than a core's L2 cache. With a gthread
worker's four request threads hashing at once, a 2-core machine ran eight fills side by side, each
from a different thread's malloc arena, cold; on a few long-lived threads they queue instead and
reuse warm pages, and the memory a login flood can claim is bounded by the cores. Measured with
bench/run.py --only login, A/B alternating, connections spread by SO_REUSEPORT (gunicorn.conf.py):
one thread per process 0.80-0.94 of the argon2id floor (43-47 ms worker CPU per login on a loaded
host), one per core 0.72-0.84 (47-48 ms). Before SO_REUSEPORT one worker could hold nearly every
connection and a single hashing thread then left a core idle: that is why the pool follows the
cores per worker and not a fixed one.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


def hashing_threads(cores: int, workers: int) -> int:
    """Hashing threads per process so that `workers` processes keep `cores` cores hashing."""
    return max(1, -(-cores // max(1, workers)))


def _workers(cores: int) -> int:  # gunicorn's worker count, with deploy/gunicorn.conf.py's default
    try:
        return int(os.environ.get("WEB_CONCURRENCY") or max(2, cores))
    except ValueError:
        return max(2, cores)


_CORES = os.cpu_count() or 1
HASHING_THREADS = hashing_threads(_CORES, _workers(_CORES))


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
