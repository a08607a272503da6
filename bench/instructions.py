"""`make bench-instructions`: CPU instructions per request, in-process, counted by valgrind.

Unlike req/s, an instruction count does not move with the load on a shared machine, so it shows
what one cut is worth. Each variant runs twice under `valgrind --tool=cachegrind` in a child
process (Flask test client, production settings, PostgreSQL + Redis as in `make bench`): once
with 0 and once with N measured requests after the same warm-up; (difference) ÷ N is the cost of
one request. Variants: the stack floor (bench/floor_stack.py) and Delta as shipped, then Delta
with one per-request feature switched off at a time, to price each of them.
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


def _delta_app(variant: str):
    import logging

    from webapp import create_app, observability, security

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


def child(variant: str, requests: int, path: str) -> None:
    """Runs under valgrind: sign in, warm up, then `requests` GETs of `path`."""
    import logging

    from webapp.db import utcnow
    from webapp.extensions import db
    from webapp.users.services import create_user

    app = _delta_app(variant)  # "floor" and "seed" switch nothing off: the app signs the caller in
    if variant == "seed":  # once, before the counted runs
        with app.app_context():
            user = create_user(db.session, name="Instructions", email=EMAIL, password=PASSWORD)
            user.email_verified = utcnow()
            create_user(db.session, name="Other", email="other-" + EMAIL, password=PASSWORD)  # /users/2
            db.session.commit()
        return
    logging.getLogger().handlers[0].setStream(open(os.devnull, "w"))  # log lines cost, terminals vary
    answer = app.test_client().post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert answer.status_code == 200, answer.data
    headers = {"Authorization": f"Bearer {answer.get_json()['access_token']}"}
    graphql = path == "/graphql"
    if variant == "floor":  # the stack floor serves `me` through both doors
        from bench.floor_stack import app as floor

        app, path = floor, path if graphql else "/api/v1/users/me"
    client = app.test_client()
    if graphql:  # POST the document of --query (the floor answers `{ me { id name } }`)
        body = {"query": os.environ.get("BENCH_GRAPHQL_QUERY", GRAPHQL_ME)}
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
    env = {**prepare(args.database_url, args.redis_url, work), "BENCH_GRAPHQL_QUERY": args.query}
    subprocess.run([sys.executable, __file__, "--child", "seed", "0", ""], cwd=ROOT, env=env, check=True)
    chosen = {"floor", "delta", *args.variants.split(",")}
    unknown = chosen - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants: {', '.join(sorted(unknown))} (known: {', '.join(VARIANTS)})")
    variants = {name: label for name, label in VARIANTS.items() if name in chosen}
    jobs = [(variant, n) for variant in variants for n in (0, args.requests)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        totals = dict(zip(jobs, pool.map(lambda job: count(env, job[0], job[1], args.path), jobs)))
    per = {v: (totals[v, args.requests] - totals[v, 0]) / args.requests for v in variants}
    floor_path = "/graphql { me { id name } }" if args.path == "/graphql" else "/api/v1/users/me"
    shown = f"/graphql {args.query}" if args.path == "/graphql" else args.path
    print(f"\ninstructions per request, {shown} (floor: {floor_path}); "
          f"ratio = floor ÷ variant; saved = Delta − variant")
    for variant, label in variants.items():
        print(f"{label:66} {per[variant] / 1e6:6.2f} M  ratio {per['floor'] / per[variant]:5.3f}  "
              f"saved {(per['delta'] - per[variant]) / 1e6:+5.2f} M")


if __name__ == "__main__":
    main()
