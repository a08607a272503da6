"""argon2id runs on a few hashing threads per process, as many at once on the host as it has cores
(webapp/auth/passwords.py says why)."""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from webapp.auth.passwords import HASHING_THREADS, Passwords, hashing_threads


class Recording:
    """The real hasher, noting which thread ran each verification and how many ran at once."""

    def __init__(self, hasher):
        self.hasher, self.threads, self.running, self.most = hasher, set(), 0, 0
        self.lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self.hasher, name)

    def verify(self, stored, password):
        with self.lock:
            self.threads.add(threading.current_thread().name)
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return self.hasher.verify(stored, password)
        finally:
            with self.lock:
                self.running -= 1


def test_verifications_from_many_threads_run_on_the_hashing_threads_only():
    passwords = Passwords()
    passwords.configure(time_cost=1, memory_kib=8 * 1024, parallelism=1)
    stored = passwords.hash("correct horse")
    recording = passwords._hasher = Recording(passwords._hasher)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: passwords.verify(stored, "correct horse" if n % 2 else "wrong"), range(16)))
    assert answers == [bool(n % 2) for n in range(16)]
    assert 1 <= recording.most <= HASHING_THREADS
    assert 1 <= len(recording.threads) <= HASHING_THREADS
    assert all(name.startswith("argon2") for name in recording.threads)


def test_a_forked_child_hashes_on_a_thread_of_its_own():
    passwords = Passwords()
    passwords.configure(time_cost=1, memory_kib=8 * 1024, parallelism=1)
    stored = passwords.hash("correct horse")  # the parent's hashing thread exists now
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the parent's thread did not survive the fork: a child that used it would hang
        os.write(write, b"1" if passwords.verify(stored, "correct horse") else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(child, 0)


def test_the_host_hashes_on_as_many_threads_as_it_has_cores():
    assert hashing_threads(cores=2, workers=2) == 1  # the shipped default: one worker per core
    assert hashing_threads(cores=8, workers=3) == 3
    assert hashing_threads(cores=4, workers=1) == 4
    assert hashing_threads(cores=1, workers=4) == 1
    cores = os.cpu_count() or 1
    workers = int(os.environ.get("WEB_CONCURRENCY") or max(2, cores))
    assert HASHING_THREADS == hashing_threads(cores, workers)
