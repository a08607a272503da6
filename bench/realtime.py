"""`make bench-realtime`: one realtime process, N subscribers, posts published at a steady rate.

On PostgreSQL + Redis in production mode (bench.run's `prepare`): one `uvicorn
webapp.realtime.asgi:app` process (one worker), N concurrent subscribers (half WebSocket speaking
graphql-transport-ws, half SSE) opened by separate client processes (bench/realtime_clients.py,
asyncio; `--client-processes`, 2 by default, N split among them), and a publisher process that creates published posts through the services at a fixed
rate (its after-commit relay is the one a web host runs). It reports:

- delivery latency from commit: each title carries the time just before its commit; p50/p99/max
  over every delivery to every subscriber (a slight overestimate: the commit itself is included);
- memory per idle connection: the realtime process's RSS (/proc/<pid>/status) before and after
  opening the subscribers, ÷ their number;
- CPU per delivered event: the realtime process's user+system time (/proc/<pid>/stat) during the
  publish phase ÷ deliveries;
- where it saturates: the rate stepped 50, 100, 200, 400 events/s until p99 passes 250 ms, a
  delivery is missing or duplicated, an SSE stream's ids go backwards, or a subscriber is dropped
  (halved from the main rate instead when that already fails, to find the rate that holds).
The clients' CPU share (all processes) is printed too: near 100 % of what they can get would mean
the clients, not the server, limit.
Prints a table and writes bench/results/realtime-<N>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.run import BENCH, BIN, ROOT, free_port, prepare  # noqa: E402

P99_LIMIT_MS = 250.0
REALTIME_SETTINGS = {  # every subscriber comes from 127.0.0.1: the per-IP limit must not refuse them
    "REALTIME_MAX_CONNECTIONS_PER_USER": "1000000", "REALTIME_IDLE_SECONDS": "3600", "LOG_LEVEL": "WARNING"}


def clock_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Piped:
    """A helper process spoken to with one line of text and answered with one line of JSON."""

    def __init__(self, command: list, env: dict, log: Path):
        self.log = open(log, "w")
        self.sent = 0  # the publisher's posts so far: seq of the last one
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.log, text=True, start_new_session=True,
                                        preexec_fn=_raise_fd_limit)

    def ask(self, line: str) -> dict:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise SystemExit(f"{self.process.args[:3]} died; see {self.log.name}")
        return json.loads(answer)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.ask("quit")
            except (BrokenPipeError, SystemExit):
                pass
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


class Clients:
    """The subscriber processes (bench/realtime_clients.py), asked as one: N subscribers are split
    among them, and their latency histograms merged (one process at 50,000 deliveries/s took
    ~0.6 of a core, as much as the server: two keep the client from being what is measured)."""

    def __init__(self, count: int, command: list, env: dict, work: Path):
        self.members = [Piped(command, env, work / f"clients-{n}.log") for n in range(count)]

    def cpu_seconds(self) -> float:
        return sum(clock_seconds(member.process.pid) for member in self.members)

    def open(self, count: int) -> dict:
        answers = [member.ask(f"open {count // len(self.members) + (n < count % len(self.members))}")
                   for n, member in enumerate(self.members)]
        reasons: dict = {}
        for answer in answers:
            for reason, times in answer["reasons"].items():
                reasons[reason] = reasons.get(reason, 0) + times
        return {"opened": sum(a["opened"] for a in answers), "failed": sum(a["failed"] for a in answers),
                "reasons": reasons, "websocket": sum(a["websocket"] for a in answers)}

    def reset(self, floor: int) -> None:
        for member in self.members:
            member.ask(f"reset {floor}")

    def count(self) -> dict:
        answers = [member.ask("count") for member in self.members]
        return {key: sum(a[key] for a in answers) for key in ("deliveries", "open", "closed")}

    def stats(self) -> dict:
        answers = [member.ask("stats") for member in self.members]
        hist: dict[str, dict[int, int]] = {"websocket": {}, "sse": {}}
        for answer in answers:
            for name, buckets in answer["hist"].items():
                for bucket, times in buckets.items():
                    hist[name][int(bucket)] = hist[name].get(int(bucket), 0) + times
        both: dict[int, int] = {}
        for buckets in hist.values():
            for bucket, times in buckets.items():
                both[bucket] = both.get(bucket, 0) + times
        split = {f"{name}_p{p}_ms": percentile(buckets, p) for name, buckets in hist.items() for p in (50, 99)}
        return {**{key: sum(a[key] for a in answers) for key in ("deliveries", "open", "closed", "duplicates",
                                                                 "out_of_order")},
                **split, "per_subscriber_min": min(a["per_subscriber_min"] for a in answers),
                "per_subscriber_max": max(a["per_subscriber_max"] for a in answers),
                "p50_ms": percentile(both, 50), "p99_ms": percentile(both, 99),
                "max_ms": round(max(both) / 10, 1) if both else None}

    def stop(self) -> None:
        for member in self.members:
            member.stop()


def percentile(buckets: dict[int, int], p: float) -> float | None:
    """The p-th percentile (ms) of a histogram of 0.1 ms buckets."""
    total = sum(buckets.values())
    if not total:
        return None
    rank, seen = min(total - 1, round(p / 100 * (total - 1))), 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen > rank:
            return round(bucket / 10, 1)
    return None


def start_realtime(env: dict, work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(work / "realtime.log", "w")
    process = subprocess.Popen([BIN / "uvicorn", "webapp.realtime.asgi:app", "--host", "127.0.0.1", "--port",
                                str(port), "--no-access-log", "--backlog", "4096"],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                               preexec_fn=_raise_fd_limit)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the realtime process exited; see {work / 'realtime.log'}")
        try:
            if urllib.request.urlopen(f"{url}/health", timeout=2).status == 200:
                return process, url
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the realtime process did not answer /health; see {work / 'realtime.log'}")


def publisher_loop(threads: int) -> None:
    """`publish RATE SECONDS` → posts created through the services on a fixed schedule."""
    from webapp import create_app
    from webapp.db import utcnow
    from webapp.extensions import db
    from webapp.users.services import create_user

    app = create_app()
    with app.app_context():
        author = create_user(db.session, name="Bench Author", email=f"author-{os.getpid()}@example.com",
                             password="bench password 1")
        author.email_verified = utcnow()
        db.session.commit()
        author_id = author.id
        db.session.remove()
    counter = iter(range(1, 10**9))
    for line in sys.stdin:
        command, *args = line.split()
        if command == "quit":
            break
        print(json.dumps(publish(app, author_id, float(args[0]), float(args[1]), threads, counter)), flush=True)


def publish(app, author_id: int, rate: float, seconds: float, threads: int, counter) -> dict:
    """Post n is due at n / rate; `threads` writers share the schedule, so one slow commit does not
    hold back the next post (a publishing commit waits for the events' ordering lock and an fsync,
    which caps one writer at about 1 / commit latency)."""
    import threading

    from webapp.extensions import db
    from webapp.posts.services import create_post
    from webapp.users.models import User

    total, started, late = int(rate * seconds), time.monotonic(), [0.0]
    numbers, lock = iter(range(total)), threading.Lock()

    def write() -> None:
        with app.app_context():
            writer = db.session.get(User, author_id)
            while True:
                with lock:
                    n = next(numbers, None)
                    if n is None:
                        break
                    seq = next(counter)
                wait = started + n / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                else:
                    late[0] = max(late[0], -wait)
                create_post(db.session, writer, title=f"bench {seq} {time.time():.6f}", content="x" * 200,
                            published=True)
            db.session.remove()

    workers = [threading.Thread(target=write) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    return {"published": total, "seconds": round(elapsed, 2), "rate": round(total / elapsed, 1),
            "late_max_ms": round(late[0] * 1000, 1)}


def drain(clients: Clients, expected: int, timeout: float = 90.0) -> dict:
    """The window's stats once every delivery arrived, or when none came for 5 s (bounded)."""
    deadline, last, quiet_since = time.monotonic() + timeout, -1, time.monotonic()
    while True:
        stats = clients.count()
        if stats["deliveries"] >= expected or time.monotonic() > deadline:
            return clients.stats()
        if stats["deliveries"] != last:
            last, quiet_since = stats["deliveries"], time.monotonic()
        elif time.monotonic() - quiet_since > 5:
            return clients.stats()
        time.sleep(0.25)


def settle(pid: int, timeout: float = 120.0) -> None:
    """Wait until the realtime process is idle (a backlog of the phase before would be counted here)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        used = clock_seconds(pid)
        time.sleep(1)
        if clock_seconds(pid) - used < 0.05:
            return


def phase(rate: float, seconds: float, clients: Clients, publisher: Piped, realtime: int) -> dict:
    settle(realtime)
    clients.reset(publisher.sent)
    before = clients.count()
    subscribers = before["open"]
    cpu, client_cpu, wall = clock_seconds(realtime), clients.cpu_seconds(), time.monotonic()
    published = publisher.ask(f"publish {rate} {seconds}")
    publisher.sent += published["published"]
    stats = drain(clients, published["published"] * subscribers)
    used = clock_seconds(realtime) - cpu
    wall = time.monotonic() - wall
    expected = published["published"] * subscribers
    return {"rate": rate, "seconds": seconds, "subscribers": subscribers, "published": published,
            **stats, "expected": expected, "missing": expected - stats["deliveries"],
            "dropped": stats["closed"] - before["closed"],
            "server_cpu_s": round(used, 2), "server_cpu_share": round(used / wall, 2),
            "client_cpu_share": round((clients.cpu_seconds() - client_cpu) / wall, 2),
            "cpu_us_per_delivery": round(used * 1e6 / max(stats["deliveries"], 1), 1)}


def saturated(result: dict) -> bool:
    return ((result["p99_ms"] or 0) > P99_LIMIT_MS or result["missing"] > 0 or result["dropped"] > 0
            or result.get("duplicates", 0) > 0 or result.get("out_of_order", 0) > 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--ws-share", type=float, default=0.5, help="the share of WebSocket subscribers")
    parser.add_argument("--rate", type=float, default=50, help="events/s of the main phase")
    parser.add_argument("--seconds", type=float, default=20, help="length of the main phase")
    parser.add_argument("--steps", default="100,200,400", help="rates tried after the main phase")
    parser.add_argument("--step-seconds", type=float, default=10)
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/delta_bench"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8"))
    parser.add_argument("--out", default=None)
    parser.add_argument("--writers", type=int, default=8, help="publisher threads sharing the schedule")
    parser.add_argument("--client-processes", type=int, default=2, help="subscriber processes sharing the N")
    parser.add_argument("--publisher", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publisher:
        return publisher_loop(args.writers)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the servers on the way out
    work = BENCH / "results" / "realtime-run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**prepare(args.database_url, args.redis_url, work), **REALTIME_SETTINGS}
    realtime, url = start_realtime(env, work)
    print(f"  realtime process {realtime.pid} on {url} (py-spy can attach to it)", flush=True)
    host, port = url.removeprefix("http://").split(":")
    # A publishing commit holds its session's connection while its after-commit relay takes a second.
    publisher = Piped([sys.executable, __file__, "--publisher", "--writers", str(args.writers)],
                      {**env, "DB_POOL_SIZE": str(2 * args.writers)}, work / "publisher.log")
    clients = Clients(args.client_processes, [sys.executable, str(BENCH / "realtime_clients.py"), host, port,
                                             str(args.ws_share)], env, work)
    try:
        report = run(args, realtime.pid, clients, publisher)
        out = Path(args.out or BENCH / "results" / f"realtime-{args.subscribers}.json")
        out.write_text(json.dumps(report, indent=2))
        print_table(report)
        print(f"written to {out}")
    finally:
        clients.stop()
        publisher.stop()
        os.killpg(realtime.pid, signal.SIGTERM)
        try:
            realtime.wait(15)
        except subprocess.TimeoutExpired:  # open streams can hold uvicorn's graceful shutdown
            os.killpg(realtime.pid, signal.SIGKILL)


def run(args, pid: int, clients: Clients, publisher: Piped) -> dict:
    print("  warming up (10 subscribers, 20 posts) ...", flush=True)
    warm = clients.open(10)
    phase(10, 2, clients, publisher, pid)
    time.sleep(1)
    before = rss_kib(pid)
    print(f"  opening {args.subscribers - warm['opened']} more subscribers ...", flush=True)
    opened = clients.open(args.subscribers - warm["opened"])
    time.sleep(2)
    after = rss_kib(pid)
    idle = {"rss_before_kib": before, "rss_after_kib": after, "connections": opened["opened"] - warm["opened"],
            "kib_per_connection": round((after - before) / max(opened["opened"] - warm["opened"], 1), 1)}
    print(f"  {opened}; {idle['kib_per_connection']} KiB per idle connection", flush=True)
    results = []

    def measure(rate: float, seconds: float) -> dict:
        print(f"  publishing {rate:g} events/s for {seconds:g} s to {opened['opened']} subscribers ...", flush=True)
        results.append(phase(rate, seconds, clients, publisher, pid))
        return results[-1]

    if saturated(measure(args.rate, args.seconds)):
        rate = args.rate / 2  # over the limit already: halve the rate until it holds (or 2 events/s)
        while rate >= 2 and saturated(measure(rate, args.step_seconds)):
            rate /= 2
    else:
        for rate in [float(r) for r in args.steps.split(",") if r]:
            if saturated(measure(rate, args.step_seconds)):
                break
    main_phase = results[0]
    passing = [r["rate"] for r in results if not saturated(r)]
    return {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "subscribers": {"asked": args.subscribers, **opened},
        "idle_memory": idle, "phases": results,
        "targets": {"p99_under_250ms_at_main_phase": (main_phase["p99_ms"] or 0) < P99_LIMIT_MS
                    and main_phase["missing"] == 0,
                    "under_50kib_per_idle_connection": idle["kib_per_connection"] < 50},
        "saturation": {"highest_rate_within_limits": max(passing, default=None),
                       "first_rate_over": next((r["rate"] for r in results if saturated(r)), None)},
    }


def print_table(report: dict) -> None:
    idle = report["idle_memory"]
    subs = report["subscribers"]
    print(f"\n{subs['opened']} subscribers ({subs['websocket']} WebSocket, {subs['opened'] - subs['websocket']} SSE, "
          f"{subs['failed']} failed to open); idle memory {idle['kib_per_connection']} KiB per connection "
          f"(RSS {idle['rss_before_kib'] // 1024} → {idle['rss_after_kib'] // 1024} MiB)")
    print(f"{'ev/s asked':>10} {'ev/s done':>9} {'deliveries':>10} {'missing':>8} {'dropped':>7} {'dup/order':>9} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8} {'µs CPU/dlv':>10} {'server CPU':>10} {'client CPU':>10}")
    for r in report["phases"]:
        print(f"{r['rate']:>10g} {r['published']['rate']:>9} {r['deliveries']:>10} {r['missing']:>8} {r['dropped']:>7} "
              f"{str(r.get('duplicates', 0)) + '/' + str(r.get('out_of_order', 0)):>9} "
              f"{r['p50_ms']!s:>8} {r['p99_ms']!s:>8} {r['max_ms']!s:>8} {r['cpu_us_per_delivery']:>10} "
              f"{r['server_cpu_share']:>10} {r['client_cpu_share']:>10}")
    print("p50/p99 ms by protocol: " + "; ".join(
        f"{r['rate']:g} ev/s WebSocket {r['websocket_p50_ms']}/{r['websocket_p99_ms']} "
        f"SSE {r['sse_p50_ms']}/{r['sse_p99_ms']}" for r in report["phases"]))
    print(f"targets: {report['targets']}; saturation: {report['saturation']}")


if __name__ == "__main__":
    main()
