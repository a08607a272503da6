"""`make bench-replicas`: read throughput and the primary's share of the reads with 0, 1 and 2 replicas.

It starts a throw-away PostgreSQL primary (pg_stat_statements loaded) and two streaming replicas
made from it with `pg_basebackup -R` (tests/servers.py), migrates and seeds the primary as
`make bench` does, then serves Delta with gunicorn (production settings) three times: without
DATABASE_REPLICA_URLS, with one replica, with two. For each read, wrk runs SECONDS and every
server's pg_stat_statements says how many SELECTs it ran (the monitors' own probes left out).

Everything — wrk, gunicorn, the primary and both replicas — shares this machine's cores, so the
throughput cannot grow with replicas here; the point is the share of reads leaving the primary.
Last, `bench/instructions.py --replica-url` counts the routing's cost on the hot path.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import PASSWORD, SEED, Server, prepare, wrk  # noqa: E402
from tests.servers import PostgresCluster, start_replica  # noqa: E402

# A read no cache answers (GraphQL's post lists are not cached), in the shape bench/floor_lists.py serves.
POSTS_QUERY = json.dumps({"query": "{ posts(limit: 20) { title author { name } } }"})
SELECTS = ("SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements "
           "WHERE query ILIKE 'select%' AND query NOT ILIKE '%pg\\_%'")  # the monitor's probes call pg_ functions


def sql(cluster: PostgresCluster, query: str):
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={cluster.port} user=postgres dbname=postgres",
                         autocommit=True) as connection:
        cursor = connection.execute(query)
        return cursor.fetchone()[0] if cursor.description else None


def replicas_up(server: Server, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(server.url + "/ready", timeout=5) as answer:
            listed = json.loads(answer.read())["replicas"]
        if len(listed) == count and all(replica["state"] == "up" for replica in listed):
            return
        time.sleep(0.2)
    raise SystemExit(f"the replicas are not up after {timeout:.0f}s: {listed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--requests", type=int, default=1200, help="for the instruction counts (valgrind)")
    parser.add_argument("--skip-instructions", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "replicas.json"))
    args = parser.parse_args()

    work = ROOT / "bench" / "results" / "replicas"
    work.mkdir(parents=True, exist_ok=True)
    primary = PostgresCluster().init()
    with open(primary.data / "postgresql.conf", "a") as conf:
        conf.write("\nshared_preload_libraries = 'pg_stat_statements'\nmax_connections = 200\n")
    primary.start()
    replicas: list[PostgresCluster] = []
    results: dict = {"note": "wrk, gunicorn, the primary and the replicas all share this machine's cores",
                     "runs": []}
    try:
        env = prepare(primary.url, args.redis_url, work)
        sql(primary, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        print("seeding 40 users x 10 posts ...", flush=True)
        seeded = json.loads(subprocess.run([sys.executable, "-c", SEED, "40", "10", PASSWORD], cwd=ROOT, env=env,
                                           check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        replicas = [start_replica(primary), start_replica(primary)]
        other = seeded["user_ids"][len(seeded["user_ids"]) // 2]
        targets = [  # name, path, wrk script, body, signed in
            ("GET /api/v1/posts (anonymous, cached page)", "/api/v1/posts?page=1&page_size=20", "get.lua", None, False),
            ("GET /api/v1/users/{id} (signed in, cached card)", f"/api/v1/users/{other}", "get.lua", None, True),
            ("GraphQL posts(limit: 20) (anonymous, uncached)", "/graphql", "post.lua", POSTS_QUERY, False),
            ("GraphQL posts(limit: 20) (signed in, uncached)", "/graphql", "post.lua", POSTS_QUERY, True),
        ]
        for count in (0, 1, 2):
            urls = ",".join(replica.url for replica in replicas[:count])
            server = Server("wsgi:app", {**env, "DATABASE_REPLICA_URLS": urls}, work / f"app-{count}.log")
            try:
                if count:
                    replicas_up(server, count)
                token = json.loads(urllib.request.urlopen(urllib.request.Request(
                    server.url + "/api/v1/auth/login", method="POST", headers={"Content-Type": "application/json"},
                    data=json.dumps({"email": "bench0@example.com", "password": PASSWORD}).encode())).read())[
                    "access_token"]
                for name, path, script, body, signed in targets:
                    drive = dict(seconds=args.warmup, threads=args.threads, connections=args.connections,
                                 script=script, env={"BODY": body or "", "TOKEN": token if signed else ""})
                    wrk(server.url + path, **drive)
                    clusters = [primary, *replicas[:count]]
                    for cluster in clusters:
                        sql(cluster, "SELECT pg_stat_statements_reset()")
                    run = wrk(server.url + path, **{**drive, "seconds": args.seconds})
                    selects = [sql(cluster, SELECTS) for cluster in clusters]
                    share = selects[0] / max(sum(selects), 1)
                    entry = {"replicas": count, "target": name, **run, "selects": selects,
                             "primary_share": round(share, 3)}
                    results["runs"].append(entry)
                    print(f"{count} replicas  {name:50} {run['rps']:8.1f} req/s  p99 {run['p99_ms']:7.2f} ms  "
                          f"errors {run['errors']}  SELECTs primary/replicas {selects[0]}/{sum(selects[1:])}  "
                          f"primary share {share:6.1%}", flush=True)
            finally:
                server.stop()
        if not args.skip_instructions:
            for extra in (["--path", "/api/v1/users/me"], ["--path", "/graphql", "--anonymous", "--query",
                                                            json.loads(POSTS_QUERY)["query"]]):
                print(f"instructions per request, {' '.join(extra)} (valgrind, {args.requests} requests) ...",
                      flush=True)
                subprocess.run([sys.executable, "bench/instructions.py", "--database-url", primary.url,
                                "--redis-url", args.redis_url, "--replica-url", replicas[0].url,
                                "--variants", "replicas,replicas-quiet", "--requests", str(args.requests), *extra],
                               cwd=ROOT, check=True)
    finally:
        for cluster in (*replicas, primary):
            cluster.destroy()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
