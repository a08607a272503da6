"""`make bench-scale`: how the post reads grow from 1,000 to 1,000,000 posts (100,000 users).

Seeds a scratch PostgreSQL database with bulk COPY (not through the services: valid rows,
one precomputed argon2id hash for every user, a profile each), VACUUM ANALYZE, starts the
app in production mode with deploy/gunicorn.conf.py (bench.run's Server) and drives each
target with wrk, at 1,000 posts and again at 1,000,000:

- page 1            GET /api/v1/posts?page=1&page_size=20
- deep page         the page 90 % of the way down, by cursor (X-Next-Cursor) when the app has
                    one; the OFFSET page is measured too, for reference
- title search      GET /api/v1/posts?q=zephyr  (2 % of titles contain the word)
- a user's posts    GET /api/v1/users/1/posts   (user 1 wrote 2 % of the posts)

wrk numbers are warm (the cached total is a hit); "cold" is a timed loop of single requests,
each right after the "posts" cache namespace was bumped, as after any write: that is what a
reader pays for the first read after a post changes. Prints a table with both sizes and the
ratio (1M / 1k of the median latency) and writes bench/results/scale.json.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.run import BENCH, PASSWORD, Server, prepare, wrk  # noqa: E402

USERS = 100_000
SIZES = (1_000, 1_000_000)
SEARCH = "zephyr"
HEAVY_AUTHOR = 1
WORDS = ("amber", "birch", "cobalt", "dune", "ember", "fjord", "granite", "harbor", "indigo", "juniper",
         "kestrel", "lantern", "meadow", "nectar", "orchid", "pebble", "quarry", "raven", "saffron",
         "tundra", "umber", "velvet", "willow", "xylem", "yarrow")
BASE = datetime(2024, 1, 1, tzinfo=timezone.utc)
CONTENT = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 3


def pg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def ts(seconds: int) -> str:
    return (BASE + timedelta(seconds=seconds)).isoformat()


def seed_users(conn, n: int) -> None:
    from argon2 import PasswordHasher, Type

    from conf.settings import ProductionConfig

    config = ProductionConfig()
    hashed = PasswordHasher(type=Type.ID, time_cost=config.ARGON2_TIME_COST,
                            memory_cost=config.ARGON2_MEMORY_KIB,
                            parallelism=config.ARGON2_PARALLELISM).hash(PASSWORD)
    now = ts(0)
    users, profiles = io.StringIO(), io.StringIO()
    for i in range(1, n + 1):
        users.write(f"{i}\tscale{i}@example.com\tScale User {i}\t{hashed}\tuser\tt\t{now}\t{now}\t{now}\n")
        profiles.write(f"{i}\tFirst{i}\tLast{i}\t\t\\N\t\t{now}\n")
    with conn.cursor() as cur:
        with cur.copy("COPY users (id, email, name, password_hash, role, is_active, email_verified, "
                      "created_at, updated_at) FROM STDIN") as copy:
            copy.write(users.getvalue())
        with cur.copy("COPY profiles (user_id, first_name, last_name, bio, avatar_key, avatar_thumbnails, "
                      "updated_at) FROM STDIN") as copy:
            copy.write(profiles.getvalue())
        cur.execute("SELECT setval(pg_get_serial_sequence('users', 'id'), %s)", (n,))
    conn.commit()


def post_row(i: int, users: int) -> str:
    author = HEAVY_AUTHOR if i % 50 == 3 else (i * 7919) % users + 1
    title = f"{WORDS[i % 25].title()} {WORDS[(i // 25) % 25]} {WORDS[(i // 625) % 25]} no. {i}"
    if i % 50 == 7:
        title = f"{SEARCH.title()} {title}"
    published = "f" if i % 10 == 9 else "t"
    created = ts(i * 30)
    return f"{i}\t{author}\t{title}\t{CONTENT}\t{published}\t{created}\t{created}\n"


def seed_posts(conn, start: int, stop: int, users: int, *, rebuild_indexes: bool) -> None:
    """Posts start..stop-1 by COPY; with `rebuild_indexes`, drop the secondary indexes first."""
    with conn.cursor() as cur:
        definitions = []
        if rebuild_indexes:
            cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'posts' "
                        "AND indexname <> 'pk_posts'")
            definitions = cur.fetchall()
            for name, _ in definitions:
                cur.execute(f'DROP INDEX "{name}"')
        chunk = 100_000
        for low in range(start, stop, chunk):
            buffer = "".join(post_row(i, users) for i in range(low, min(stop, low + chunk)))
            with cur.copy("COPY posts (id, author_id, title, content, published, created_at, updated_at) "
                          "FROM STDIN") as copy:
                copy.write(buffer)
        cur.execute("SELECT setval(pg_get_serial_sequence('posts', 'id'), %s)", (stop - 1,))
        cur.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in definitions:
            cur.execute(definition)
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE users")
    conn.execute("VACUUM ANALYZE profiles")
    conn.execute("VACUUM ANALYZE posts")
    conn.autocommit = False


def get(url: str) -> tuple[int, dict, bytes]:
    with urllib.request.urlopen(url, timeout=300) as response:
        return response.status, dict(response.headers), response.read()


def deep_cursor_url(app_url: str, size: int) -> str | None:
    """A cursor 90 % of the way down the public list, built by the app's own encoder."""
    try:
        from webapp.pagination import encode_cursor
    except ImportError:
        return None
    status, headers, _ = get(f"{app_url}/api/v1/posts?page=1&page_size=20")
    if not any(key.lower() == "x-next-cursor" for key in headers):
        return None
    import psycopg

    with psycopg.connect(pg_url(ARGS.database_url)) as conn:
        created_at, post_id = conn.execute(
            "SELECT created_at, id FROM posts WHERE published ORDER BY created_at DESC, id DESC "
            "OFFSET %s LIMIT 1", (int(size * 0.9 * 0.9),)).fetchone()
    cursor = encode_cursor("-created_at", created_at, post_id)
    return f"/api/v1/posts?page_size=20&cursor={urllib.parse.quote(cursor)}"


def cold(app_url: str, path: str, redis_client, runs: int) -> float:
    """Median ms of single requests, each right after a write-like bump of the posts namespace."""
    times = []
    for _ in range(runs):
        redis_client.incr("flask_cache_v:posts")
        started = time.perf_counter()
        status, _, _ = get(app_url + path)
        times.append((time.perf_counter() - started) * 1000)
        assert status == 200, (path, status)
    return round(statistics.median(times), 2)


def measure(app: Server, size: int, redis_client) -> dict:
    last_page = max(1, -(-int(size * 0.9) // 20))  # 90 % of the posts are published
    targets = {
        "page 1": "/api/v1/posts?page=1&page_size=20",
        "deep page": deep_cursor_url(app.url, size) or f"/api/v1/posts?page={last_page}&page_size=20",
        "title search": f"/api/v1/posts?page=1&page_size=20&q={SEARCH}",
        "user's posts": f"/api/v1/users/{HEAVY_AUTHOR}/posts?page=1&page_size=20",
    }
    results = {}
    for name, path in targets.items():
        status, headers, body = get(app.url + path)
        assert status == 200, (name, status, body[:200])
        items = len(json.loads(body))
        print(f"  {size:>9,} posts  {name:30} ({items} items) ...", flush=True)
        result = {"cold_ms": cold(app.url, path, redis_client, ARGS.cold_runs)}
        if result["cold_ms"] < 500:  # a slow target under wrk only measures its queue
            wrk(app.url + path, seconds=ARGS.warmup, threads=2, connections=ARGS.connections)
            result.update(wrk(app.url + path, seconds=ARGS.seconds, threads=2, connections=ARGS.connections))
        else:
            result.update({"rps": float("nan"), "p50_ms": result["cold_ms"], "p99_ms": float("nan"), "errors": 0})
        results[name] = {"path": path, "items": items, **result}
    # For reference: what the OFFSET page at the same depth costs (single requests, warm count).
    path = f"/api/v1/posts?page={last_page}&page_size=20"
    times = []
    for _ in range(3):
        started = time.perf_counter()
        get(app.url + path)
        times.append((time.perf_counter() - started) * 1000)
    results["deep page by OFFSET (reference)"] = {"path": path, "single_ms": round(statistics.median(times), 2)}
    return results


def main() -> None:
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", 5)))
    parser.add_argument("--warmup", type=int, default=int(os.environ.get("BENCH_WARMUP", 2)))
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--cold-runs", type=int, default=9)
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_SCALE_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/delta_scale"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_SCALE_REDIS_URL", "redis://127.0.0.1:6379/9"))
    parser.add_argument("--out", default=str(BENCH / "results" / "scale.json"))
    ARGS = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    sizes = sorted(int(s) for s in ARGS.sizes.split(","))
    import psycopg
    import redis

    work = BENCH / "results" / "scale-run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    redis_client = redis.Redis.from_url(ARGS.redis_url)
    env = prepare(ARGS.database_url, ARGS.redis_url, work)
    conn = psycopg.connect(pg_url(ARGS.database_url))
    started = time.perf_counter()
    seed_users(conn, ARGS.users)
    print(f"seeded {ARGS.users:,} users with profiles in {time.perf_counter() - started:.1f} s", flush=True)

    report = {"machine": {"cores": os.cpu_count(), "python": sys.version.split()[0],
                          "wrk": f"-t2 -c{ARGS.connections} -d{ARGS.seconds}s"},
              "users": ARGS.users, "sizes": {}}
    seeded = 0
    for size in sizes:
        started = time.perf_counter()
        seed_posts(conn, seeded + 1, size + 1, ARGS.users, rebuild_indexes=size - seeded > 100_000)
        seeded = size
        print(f"seeded posts up to {size:,} (COPY, VACUUM ANALYZE) in {time.perf_counter() - started:.1f} s",
              flush=True)
        redis_client.flushdb()
        app = Server("wsgi:app", env, work / f"app-{size}.log")
        try:
            report["sizes"][str(size)] = measure(app, size, redis_client)
        finally:
            app.stop()
    conn.close()

    small, large = (report["sizes"][str(s)] for s in (sizes[0], sizes[-1]))
    report["ratios"] = {}
    print()
    print(f"{'target':32} {'p50 ms':>8} {'p50 ms':>8} {'ratio':>6} {'req/s':>8} {'req/s':>8} "
          f"{'cold ms':>8} {'cold ms':>8} {'ratio':>6}")
    print(f"{'':32} {sizes[0]:>8,} {sizes[-1]:>8,} {'':>6} {sizes[0]:>8,} {sizes[-1]:>8,} "
          f"{sizes[0]:>8,} {sizes[-1]:>8,}")
    for name in small:
        a, b = small[name], large[name]
        if "single_ms" in a:
            ratio = round(b["single_ms"] / a["single_ms"], 2)
            report["ratios"][name] = {"single": ratio}
            print(f"{name:32} {a['single_ms']:>8} {b['single_ms']:>8} {ratio:>6}  (single requests)")
            continue
        ratio = round(b["p50_ms"] / a["p50_ms"], 2)
        cold_ratio = round(b["cold_ms"] / a["cold_ms"], 2)
        report["ratios"][name] = {"p50": ratio, "rps": round(a["rps"] / b["rps"], 2), "cold": cold_ratio}
        print(f"{name:32} {a['p50_ms']:>8} {b['p50_ms']:>8} {ratio:>6} {a['rps']:>8} {b['rps']:>8} "
              f"{a['cold_ms']:>8} {b['cold_ms']:>8} {cold_ratio:>6}")
    out = Path(ARGS.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nratio = 1M / 1k (p50 under wrk; cold = first read after a write). Written to {out}")


if __name__ == "__main__":
    main()
