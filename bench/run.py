"""`make bench`: Delta against the stack floor, on PostgreSQL + Redis with the shipped gunicorn config.

It migrates and seeds a scratch database through the services, then serves the app in production
mode (rate limits on with a high default, metrics and JSON request logs on) and the floors with
the very same gunicorn settings, all at once:
- the stack floor (bench/floor_stack.py): an authenticated `me` on the same libraries with none
  of Delta's own per-request work, over REST (flask-smorest + marshmallow) and GraphQL (strawberry);
- the list floors (bench/floor_lists.py, issue 22): strawberry answering the nested list and the
  post list from objects in memory, and flask-smorest + marshmallow + one Core statement serving
  the posts page, each against the same read of Delta (anonymous where the floor is);
- the bare floors: a Flask view returning a small JSON body, a strawberry view answering `{ hello }`;
- argon2id verifications per second in as many processes as workers (what login can never beat),
  measured right before and after each login run while the app sits idle.
wrk drives each from a separate process on loopback, interleaved: in every round each target runs
between two runs of its stack floor and its ratio is taken against their mean, so a noisy
neighbour slows both sides alike. The ratio printed is the median over the rounds (the bare
floors are measured once a round, for reference); bench/results/bench.json has every run.
Each run also reads the gunicorn workers' CPU time from /proc: CPU ms per request, and the
floor's ÷ the target's, is the steadier figure on a shared machine (steal and waiting excluded;
PostgreSQL's and Redis's own CPU is not in it).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BENCH = ROOT / "bench"
PASSWORD = "bench password 1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, body: dict | None = None, token: str | None = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class Server:
    """A gunicorn master with the shipped config, its workers, and how long it took to answer."""

    def __init__(self, app: str, env: dict, log_path: Path):
        self.port = free_port()
        self.env = {**env, "PORT": str(self.port), "HOST": "127.0.0.1",
                    "PROMETHEUS_MULTIPROC_DIR": str(log_path.parent / f"metrics-{self.port}")}
        self.log = open(log_path, "w")
        started = time.perf_counter()
        self.process = subprocess.Popen([BIN / "gunicorn", "--config", "deploy/gunicorn.conf.py", app],
                                        cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        probe = "/health" if app == "wsgi:app" else ("/floor" if "flask" in app else "/graphql?query=%7B__typename%7D")
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(self.url + probe, timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit(f"{app} did not start; see {log_path}")
        self.startup_seconds = time.perf_counter() - started

    def workers(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def cpu_seconds(self) -> float:
        """User + system CPU its workers have used so far (steal time and waiting excluded)."""
        total = 0
        for pid in self.workers():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


def peak_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, *, seconds: int, threads: int, connections: int, script: str = "get.lua",
        env: dict | None = None) -> dict:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
               "-s", str(BENCH / script), url]
    out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})},
                         timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def percentile(p: str) -> float:
        match = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return round(float(match.group(1)) * UNITS[match.group(2)], 2) if match else float("nan")

    requests_done = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0)
    return {"rps": round(rps, 1), "p50_ms": percentile("50"), "p99_ms": percentile("99"),
            "errors": errors, "requests": requests_done}


def _hash_worker(args) -> int:
    from argon2 import PasswordHasher, Type

    seconds, params = args
    hasher = PasswordHasher(type=Type.ID, **params)
    stored = hasher.hash(PASSWORD)
    done, cpu, deadline = 0, time.process_time(), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        hasher.verify(stored, PASSWORD)
        done += 1
    return done, time.process_time() - cpu


def hash_floor(processes: int, seconds: float) -> dict:
    """Verifications per second with `processes` processes busy, and CPU ms per verification:
    what login can never beat."""
    from conf.settings import ProductionConfig

    config = ProductionConfig()
    params = {"time_cost": config.ARGON2_TIME_COST, "memory_cost": config.ARGON2_MEMORY_KIB,
              "parallelism": config.ARGON2_PARALLELISM}
    with multiprocessing.Pool(processes) as pool:
        runs = pool.map(_hash_worker, [(seconds, params)] * processes)
    done = sum(count for count, _ in runs)
    return {"rps": round(done / seconds, 1), "cpu_ms": round(sum(cpu for _, cpu in runs) * 1000 / max(done, 1), 3)}


def reset_database(url: str) -> None:
    """An empty public schema in the scratch database, created first on a fresh machine."""
    import sqlalchemy as sa

    target = sa.make_url(url)
    server = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        if not connection.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                 {"name": target.database}):
            connection.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    server.dispose()
    engine = sa.create_engine(target)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


SEED = r"""
import json, sys
from webapp import create_app
from webapp.extensions import db
from webapp.db import utcnow
from webapp.users.services import create_user
app = create_app()
users, posts_per_user, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ids = []
with app.app_context():
    for n in range(users):
        user = create_user(db.session, name=f"Bench User {n}", email=f"bench{n}@example.com", password=password)
        user.email_verified = utcnow()
        user.profile.first_name = f"First{n}"
        db.session.commit()
        ids.append(user.id)
    post_ids = []
    try:
        from webapp.posts import services as posts
    except ImportError:
        posts = None
    if posts is not None:
        from webapp.users.models import User
        for uid in ids:
            author = db.session.get(User, uid)
            for k in range(posts_per_user):
                post = posts.create_post(db.session, author, title=f"Post {k} by {uid}",
                                         content="Lorem ipsum " * 20, published=True)
                post_ids.append(post.id)
print(json.dumps({"user_ids": ids, "post_ids": post_ids}))
"""


# Limits on, but high enough for one token hammering one worker pool; metrics and JSON logs on.
BENCH_SETTINGS = {"RATELIMIT_ENABLED": "true", "RATELIMIT_DEFAULT": "10000000/minute",
                  "RATELIMIT_LOGIN_IP": "10000000/minute", "RATELIMIT_LOGIN_EMAIL": "10000000/minute",
                  "LOG_LEVEL": "INFO"}


def prepare(database_url: str, redis_url: str, work: Path) -> dict:
    """Empty scratch database and Redis db, migrated; the production-mode environment to serve them."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    reset_database(database_url)
    env = {**os.environ, "APP_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(48),
           "JWT_SECRET_KEY": secrets.token_urlsafe(48), "DATABASE_URL": database_url,
           "REDIS_URL": redis_url, "INSTANCE_PATH": str(work), "PYTHONPATH": str(ROOT), **BENCH_SETTINGS}
    env.pop("TEST_DATABASE_URL", None)
    subprocess.run([BIN / "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    return env


NESTED = "{ users(limit: 20) { name profile { firstName } posts(limit: 5) { title author { name } } } }"
POSTS = "{ posts(limit: 20) { title author { name } } }"
POSTS_PAGE = "/api/v1/posts?page_size=20"
FLOORS = {  # name → (module, path, wrk script, request body, sends the token)
    "stack REST": ("bench.floor_stack:app", "/api/v1/users/me", "get.lua", None, True),
    "stack GraphQL": ("bench.floor_stack:app", "/graphql", "post.lua", json.dumps({"query": "{ me { id name } }"}), True),
    "REST posts page": ("bench.floor_lists:app", POSTS_PAGE, "get.lua", None, False),
    "strawberry nested list": ("bench.floor_lists:app", "/graphql", "post.lua", json.dumps({"query": NESTED}), False),
    "strawberry posts(20)": ("bench.floor_lists:app", "/graphql", "post.lua", json.dumps({"query": POSTS}), False),
    "Flask JSON": ("bench.floor_flask:app", "/floor", "get.lua", None, False),
    "strawberry { hello }": ("bench.floor_strawberry:app", "/graphql", "post.lua", json.dumps({"query": "{ hello }"}), False),
}
FLOOR_OF = {"rest": ("stack REST", "Flask JSON"), "rest-pat": ("stack REST", "Flask JSON"), "graphql": ("stack GraphQL", "strawberry { hello }"),
            "rest-list": ("REST posts page", "Flask JSON"), "nested": ("strawberry nested list", "strawberry { hello }"),
            "graphql-list": ("strawberry posts(20)", "strawberry { hello }")}
ANONYMOUS = {"login", "rest-list", "graphql-list"}  # kinds whose requests send no token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", 5)))
    parser.add_argument("--warmup", type=int, default=int(os.environ.get("BENCH_WARMUP", 3)))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 5)))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--posts-per-user", type=int, default=10)
    parser.add_argument("--only", default="", help="run only targets whose name contains this")
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/delta_bench"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8"))
    parser.add_argument("--out", default=str(BENCH / "results" / "bench.json"))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk; `make bench` does it)")

    work = BENCH / "results" / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = prepare(args.database_url, args.redis_url, work)
    print(f"seeding {args.users} users x {args.posts_per_user} posts through the services ...", flush=True)
    seeded = json.loads(subprocess.run([sys.executable, "-c", SEED, str(args.users), str(args.posts_per_user),
                                        PASSWORD], cwd=ROOT, env=env, check=True, capture_output=True,
                                       text=True).stdout.strip().splitlines()[-1])
    user_ids, post_ids = seeded["user_ids"], seeded["post_ids"]

    other = user_ids[len(user_ids) // 2]
    post = post_ids[len(post_ids) // 2] if post_ids else None
    gql = lambda query: json.dumps({"query": query})  # noqa: E731
    targets = [  # name, kind, path, wrk script, body
        ("GET /api/v1/users/me", "rest", "/api/v1/users/me", "get.lua", None),
        ("GET /api/v1/users/me (personal access token)", "rest-pat", "/api/v1/users/me", "get.lua", None),
        ("GET /api/v1/users/{id}", "rest", f"/api/v1/users/{other}", "get.lua", None),
        ("GET /api/v1/posts?page=1&page_size=20", "rest", "/api/v1/posts?page=1&page_size=20", "get.lua", None),
        ("GET /api/v1/posts/{id}", "rest", f"/api/v1/posts/{post}", "get.lua", None),
        ("GraphQL { me { id name } }", "graphql", "/graphql", "post.lua", gql("{ me { id name } }")),
        ("GraphQL users(20){profile, posts(5){author}}", "nested", "/graphql", "post.lua", gql(NESTED)),
        ("GraphQL posts(20){title, author} anonymous", "graphql-list", "/graphql", "post.lua", gql(POSTS)),
        (f"GET {POSTS_PAGE} anonymous", "rest-list", POSTS_PAGE, "get.lua", None),
        ("POST /api/v1/auth/login", "login", "/api/v1/auth/login", "post.lua",
         json.dumps({"email": "bench1@example.com", "password": PASSWORD})),
    ]
    targets = [t for t in targets if args.only.lower() in t[0].lower()]
    needed = {name for _, kind, *_ in targets for name in FLOOR_OF.get(kind, ())}  # --only: their floors alone
    floors_run = {name: floor for name, floor in FLOORS.items() if name in needed}

    servers = {"app": Server("wsgi:app", env, work / "app.log")}
    for module in dict.fromkeys(module for module, *_ in floors_run.values()):
        servers[module] = Server(module, env, work / f"floor-{module.split(':')[0].split('.')[-1]}.log")
    app = servers["app"]
    status, tokens = http("POST", f"{app.url}/api/v1/auth/login", {"email": "bench0@example.com", "password": PASSWORD})
    assert status == 200, tokens
    token = tokens["access_token"]
    status, pat = http("POST", f"{app.url}/api/v1/users/me/tokens", {"name": "bench", "scopes": ["read"],
                                                                     "expires_in_days": 1}, token)
    assert status == 201, pat
    bearers = {"rest-pat": pat["token"]}  # kinds that send another credential than the access token
    for name, kind, path, script, body in targets:  # a list floor must answer what Delta answers
        floor = FLOORS[FLOOR_OF[kind][0]] if kind in ("nested", "graphql-list", "rest-list") else None
        if floor is not None:
            asked = [http("POST" if body else "GET", server.url + path, json.loads(body) if body else None,
                          token if kind == "nested" and server is app else None)
                     for server in (app, servers[floor[0]])]
            assert asked[0] == asked[1] and asked[0][0] == 200, f"{name}: Delta and its floor differ: {asked}"

    def drive(server: Server, path: str, script: str, body: str | None, auth: bool | str, seconds: int) -> dict:
        cpu = server.cpu_seconds()
        bearer = (auth if isinstance(auth, str) else token) if auth else ""
        run = wrk(server.url + path, seconds=seconds, threads=args.threads, connections=args.connections,
                  script=script, env={"BODY": body or "", "TOKEN": bearer})
        run["cpu_ms"] = round((server.cpu_seconds() - cpu) * 1000 / max(run["requests"], 1), 3)
        return run

    floor_runs = {name: [] for name in floors_run}
    target_runs = {name: [] for name, *_ in targets}
    print("  warming up every server and target ...", flush=True)
    for name, (module, path, script, body, auth) in floors_run.items():
        drive(servers[module], path, script, body, auth, args.warmup)
    for name, kind, path, script, body in targets:
        drive(app, path, script, body, bearers.get(kind, kind not in ANONYMOUS), args.warmup)
    # Interleaved: in each round every target runs between two runs of its floor, and its ratio is
    # taken against their mean, so a noisy neighbour slows both sides of a ratio alike.
    def measure_floor(name: str) -> dict:
        module, path, script, body, auth = FLOORS[name]
        print(f"  round {round_}: floor {name} ...", flush=True)
        run = drive(servers[module], path, script, body, auth, args.seconds)
        floor_runs[name].append(run)
        return run

    bracket = {name: [] for name, *_ in targets}
    argon2_runs = []
    workers = int(os.environ.get("WEB_CONCURRENCY") or max(2, multiprocessing.cpu_count()))

    def measure_argon2() -> dict:  # the app's workers sit idle meanwhile
        print(f"  round {round_}: floor argon2id verify ...", flush=True)
        argon2_runs.append(hash_floor(workers, max(3, args.seconds)))
        return argon2_runs[-1]

    for round_ in range(1, args.rounds + 1):
        for floor_name in floors_run:
            before = measure_floor(floor_name)
            for name, kind, tpath, tscript, tbody in targets:
                if FLOOR_OF.get(kind, ("",))[0] == floor_name:
                    print(f"  round {round_}: {name} ...", flush=True)
                    auth = bearers.get(kind, kind not in ANONYMOUS)
                    target_runs[name].append(drive(app, tpath, tscript, tbody, auth, args.seconds))
                    after = measure_floor(floor_name)
                    bracket[name].append({key: (before[key] + after[key]) / 2 for key in ("rps", "cpu_ms")})
                    before = after
        for name, kind, tpath, tscript, tbody in targets:
            if kind == "login":  # bracketed like the rest: argon2id alone, in as many processes as workers
                before = measure_argon2()
                print(f"  round {round_}: {name} ...", flush=True)
                target_runs[name].append(drive(app, tpath, tscript, tbody, False, args.seconds))
                after = measure_argon2()
                bracket[name].append({key: (before[key] + after[key]) / 2 for key in ("rps", "cpu_ms")})
    app_workers = {pid: round(peak_rss_mib(pid), 1) for pid in app.workers()}
    app_startup = app.startup_seconds
    for server in servers.values():
        server.stop()

    def summary(runs: list[dict]) -> dict:
        best = max(runs, key=lambda r: r["rps"])
        return {**best, "rps_runs": [r["rps"] for r in runs], "errors": sum(r["errors"] for r in runs),
                "cpu_ms": round(statistics.median(r["cpu_ms"] for r in runs), 3)}

    floors = {name: summary(runs) for name, runs in floor_runs.items()}
    if argon2_runs:
        floors["argon2id verify"] = {"rps": max(r["rps"] for r in argon2_runs),
                                     "rps_runs": [r["rps"] for r in argon2_runs],
                                     "cpu_ms": round(statistics.median(r["cpu_ms"] for r in argon2_runs), 3)}
    results = {}
    for name, kind, *_ in targets:
        runs = target_runs[name]
        ratios = [r["rps"] / f["rps"] for r, f in zip(runs, bracket[name])]
        cpu_ratios = [f["cpu_ms"] / r["cpu_ms"] for r, f in zip(runs, bracket[name]) if r["cpu_ms"]]
        if kind == "login":
            results[name] = {"kind": kind, **summary(runs), "floor": "argon2id verify",
                             "ratio": round(statistics.median(ratios), 3), "ratio_runs": [round(x, 3) for x in ratios],
                             "cpu_ratio": round(statistics.median(cpu_ratios), 3),
                             "cpu_ratio_runs": [round(x, 3) for x in cpu_ratios]}
            continue
        stack, bare = FLOOR_OF[kind]
        bare_ratios = [r["rps"] / f["rps"] for r, f in zip(runs, floor_runs[bare])]
        results[name] = {"kind": kind, **summary(runs), "floor": stack,
                         "ratio": round(statistics.median(ratios), 3), "ratio_runs": [round(x, 3) for x in ratios],
                         "cpu_ratio": round(statistics.median(cpu_ratios), 3),
                         "cpu_ratio_runs": [round(x, 3) for x in cpu_ratios],
                         "ratio_to_bare": round(statistics.median(bare_ratios), 3), "bare_floor": bare}
    report = {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0],
                    "wrk": f"-t{args.threads} -c{args.connections} -d{args.seconds}s x {args.rounds} rounds"},
        "settings": {key: env[key] for key in BENCH_SETTINGS},
        "floors": floors, "targets": results,
        "resources": {"gunicorn_worker_peak_rss_mib": app_workers, "startup_to_first_health_s": round(app_startup, 2)},
        "seed": {"users": len(user_ids), "posts": len(post_ids)},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))

    print(f"\nratio: the median over {args.rounds} rounds of target req/s ÷ its floor's req/s in the same round;"
          "\ncpu r.: the floor's gunicorn-worker CPU ms per request ÷ the target's; bare: req/s ÷ the bare floor's")
    print(f"{'target':46} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'cpu ms':>6} {'ratio':>6} "
          f"{'cpu r.':>6} {'bare':>6}  floor")
    for name, floor in floors.items():
        print(f"{'floor: ' + name:46} {floor['rps']:>8.1f} {floor.get('p50_ms', float('nan')):>7} "
              f"{floor.get('p99_ms', float('nan')):>7} {floor.get('errors', 0):>6} {floor.get('cpu_ms', float('nan')):>6}")
    for name, r in results.items():
        print(f"{name:46} {r['rps']:>8.1f} {r['p50_ms']:>7} {r['p99_ms']:>7} {r['errors']:>6} {r['cpu_ms']:>6} "
              f"{r['ratio']:>6.3f} {r.get('cpu_ratio', float('nan')):>6.3f} {r.get('ratio_to_bare', float('nan')):>6.3f}"
              f"  {r['floor']}")
    print(f"\ngunicorn worker peak RSS (MiB): {app_workers}; start-up to first /health 200: {app_startup:.2f} s")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
