"""`make bench-instructions`: CPU instructions per request, in-process, counted by valgrind.

Unlike req/s, an instruction count does not move with the load on a shared machine, so it shows
what one cut is worth. Each variant runs twice under `valgrind --tool=cachegrind` in a child
process (Flask test client, production settings, PostgreSQL + Redis as in `make bench`): once
with 0 and once with N measured requests after the same warm-up; (difference) ÷ N is the cost of
one request. Variants: the stack floor (bench/floor_stack.py) and Delta as shipped, then Delta
with one per-request feature switched off at a time, to price each of them. A list read (GraphQL
other than `me`, or `/api/v1/posts`) is counted against its list floor (bench/floor_lists.py),
on the data `make bench` seeds (40 users with 10 published posts each); `--anonymous` sends no token.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EMAIL, PASSWORD = "instructions@example.com", "instructions password 1"
GRAPHQL_ME = "{ me { id name } }"
SEED_USERS, SEED_POSTS = 40, 10  # as `make bench` seeds
VARIANTS = {  # name → what is switched off
    "floor": "the stack floor (bench/floor_stack.py)",
    "delta": "Delta as shipped",
    "no-limiter": "Delta, rate limiter off",
    "limiter-in-memory": "Delta, rate limiter counting in memory (no Redis round trip)",
    "no-observability": "Delta, no request id, metrics or JSON log line",
    "no-log-line": "Delta, no JSON log line",
    "no-etag": "Delta, no ETag",
    "no-security-headers": "Delta, no security headers",
}
REPLICA_VARIANTS = {  # with --replica-url: a read replica switched on (webapp/replicas)
    "replicas": "Delta with DATABASE_REPLICA_URLS (the monitor polling 4x/s)",
    "replicas-quiet": "Delta with DATABASE_REPLICA_URLS, the monitor polling every 30 s",
}


def _delta_app(variant: str):
    import logging

    from webapp import create_app, observability, security

    if variant.startswith("replicas"):  # as an operator adds one: DATABASE_REPLICA_URLS=...
        os.environ["DATABASE_REPLICA_URLS"] = os.environ["BENCH_REPLICA_URL"]
        if variant == "replicas-quiet":  # the routing alone, without the monitor's polls in the count
            os.environ["REPLICA_POLL_SECONDS"] = "30"
    if variant == "no-limiter":  # as an operator switches it off: RATELIMIT_ENABLED=false
        os.environ["RATELIMIT_ENABLED"] = "false"
    app = create_app()
    if variant == "limiter-in-memory":
        from webapp.compat.flask_limiter import count_in_memory

        count_in_memory(app.extensions["delta_limiter"])
    elif variant == "no-observability":
        app.before_request_funcs[None].remove(observability._start)
        app.after_request_funcs[None].remove(observability._finish)
    elif variant == "no-log-line":
        logging.getLogger("webapp.request").setLevel(logging.WARNING)
    elif variant == "no-etag":
        app.config["ETAG_DISABLED"] = True
    elif variant == "no-security-headers":
        app.after_request_funcs[None].remove(security._headers)
    return app


def seed(app) -> None:
    """The caller, another user (/users/2), then the bench's users and posts for the list reads."""
    from webapp.extensions import db
    from webapp.posts.services import create_post
    from webapp.users.services import create_user

    with app.app_context():
        create_user(db.session, name="Instructions", email=EMAIL, password=PASSWORD, verified=True)
        create_user(db.session, name="Other", email="other-" + EMAIL, password=PASSWORD)
        for n in range(2, SEED_USERS):
            user = create_user(db.session, name=f"Bench User {n}", email=f"bench{n}@example.com",
                               password=PASSWORD, verified=True)
            user.profile.first_name = f"First{n}"
            db.session.commit()
            for k in range(SEED_POSTS):
                create_post(db.session, user, title=f"Post {k} by {user.id}", content="Lorem ipsum " * 20,
                            published=True)


def lists_floor(path: str, query: str) -> bool:
    """Whether the read is a list, served by bench/floor_lists.py rather than the stack floor."""
    return path.startswith("/api/v1/posts") or (path == "/graphql" and query != GRAPHQL_ME)


def child(variant: str, requests: int, path: str) -> None:
    """Runs under valgrind: sign in, warm up, then `requests` GETs of `path`."""
    import logging

    app = _delta_app(variant)  # "floor" and "seed" switch nothing off: the app signs the caller in
    if variant == "seed":  # once, before the counted runs
        return seed(app)
    logging.getLogger().handlers[0].setStream(open(os.devnull, "w"))  # log lines cost, terminals vary
    answer = app.test_client().post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert answer.status_code == 200, answer.data
    headers = {"Authorization": f"Bearer {answer.get_json()['access_token']}"}
    if os.environ.get("BENCH_ANONYMOUS"):
        headers = {}
    elif os.environ.get("BENCH_PAT") and variant != "floor":  # the floor keeps its JWT: the bar stays the same
        answer = app.test_client().post("/api/v1/users/me/tokens", json={"name": "bench", "scopes": ["read"]},
                                        headers=headers)
        assert answer.status_code == 201, answer.data
        headers = {"Authorization": f"Bearer {answer.get_json()['token']}"}
    graphql = path == "/graphql"
    query = os.environ.get("BENCH_GRAPHQL_QUERY", GRAPHQL_ME)
    if variant == "floor" and lists_floor(path, query):  # the same document or path, from memory / Core
        from bench.floor_lists import app
    elif variant == "floor":  # the stack floor serves `me` through both doors
        from bench.floor_stack import app as floor

        app, path = floor, path if graphql else "/api/v1/users/me"
    client = app.test_client()
    if graphql:  # POST the document of --query (the stack floor answers `{ me { id name } }`)
        body = {"query": query}
        send = lambda: client.post(path, json=body, headers=headers)  # noqa: E731
    else:
        send = lambda: client.get(path, headers=headers)  # noqa: E731
    for _ in range(50):
        answer = send()
        assert answer.status_code == 200 and b'"errors"' not in answer.data, answer.data
    for _ in range(requests):
        send()


def count(env: dict, variant: str, requests: int, path: str) -> int:
    run = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, __file__, "--child", variant, str(requests), path],
        cwd=ROOT, env={**env, "PYTHONMALLOC": "malloc"}, capture_output=True, text=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", run.stderr)
    if run.returncode or not found:
        raise SystemExit(f"{variant}: valgrind run failed\n{run.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--path", default="/api/v1/users/me",
                        help="Delta's path (the floor always serves me); /api/v1/users/2 is another user; "
                             "/graphql POSTs --query (the floor: its strawberry `me`)")
    parser.add_argument("--query", default=GRAPHQL_ME, help="the GraphQL document for --path /graphql")
    parser.add_argument("--anonymous", action="store_true", help="send no token (public reads)")
    parser.add_argument("--pat", action="store_true", help="Delta's requests send a personal access token "
                                                           "(read scope) instead of an access token")
    parser.add_argument("--replica-url", default="", help="a streaming replica of --database-url: adds the "
                                                          "variants " + ", ".join(REPLICA_VARIANTS))
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/delta_bench"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8"))
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated subset to count (floor and delta are always counted)")
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "N", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], int(args.child[1]), args.child[2])
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    from bench.run import prepare

    work = ROOT / "bench" / "results" / "instructions"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**prepare(args.database_url, args.redis_url, work), "BENCH_GRAPHQL_QUERY": args.query,
           **({"BENCH_ANONYMOUS": "1"} if args.anonymous else {}), **({"BENCH_PAT": "1"} if args.pat else {})}
    subprocess.run([sys.executable, __file__, "--child", "seed", "0", ""], cwd=ROOT, env=env, check=True)
    known = {**VARIANTS, **(REPLICA_VARIANTS if args.replica_url else {})}
    env["BENCH_REPLICA_URL"] = args.replica_url
    chosen = {"floor", "delta", *args.variants.split(","), *(REPLICA_VARIANTS if args.replica_url else ())}
    unknown = chosen - set(known)
    if unknown:
        raise SystemExit(f"unknown variants: {', '.join(sorted(unknown))} (known: {', '.join(known)})")
    variants = {name: label for name, label in known.items() if name in chosen}
    jobs = [(variant, n) for variant in variants for n in (0, args.requests)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        totals = dict(zip(jobs, pool.map(lambda job: count(env, job[0], job[1], args.path), jobs)))
    per = {v: (totals[v, args.requests] - totals[v, 0]) / args.requests for v in variants}
    floor_path = "/graphql { me { id name } }" if args.path == "/graphql" else "/api/v1/users/me"
    if lists_floor(args.path, args.query):
        floor_path = "bench/floor_lists.py, the same request"
        variants["floor"] = "the list floor (bench/floor_lists.py)"
    shown = f"/graphql {args.query}" if args.path == "/graphql" else args.path
    print(f"\ninstructions per request, {shown} (floor: {floor_path}); "
          f"ratio = floor ÷ variant; saved = Delta − variant")
    for variant, label in variants.items():
        print(f"{label:66} {per[variant] / 1e6:6.2f} M  ratio {per['floor'] / per[variant]:5.3f}  "
              f"saved {(per['delta'] - per[variant]) / 1e6:+5.2f} M")
    for variant in variants.keys() & REPLICA_VARIANTS.keys():
        print(f"{variant}: {(per[variant] / per['delta'] - 1) * 100:+.1f} % instructions vs Delta as shipped")


if __name__ == "__main__":
    main()
