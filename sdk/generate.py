"""`make sdk`: a typed Python client and TypeScript types, generated from the live /openapi.json.

Usage: python sdk/generate.py [--url http://host:port] [--out build/sdk]
Without --url a throw-away gunicorn (SQLite, temporary instance folder) is started, so what is
generated is what a deployed server serves, not what the source might say. tests/test_sdk.py calls
the same functions, then walks the API with the generated client and runs `tsc --strict` on walk.ts.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Pinned: a generator's new major may change the generated names the walk and walk.ts rely on.
OPENAPI_TYPESCRIPT = "openapi-typescript@7.13.0"
TYPESCRIPT = "typescript@5.9.3"
PACKAGE = "delta_client"  # the generated Python package (openapi-python-client derives it from the title)


def fetch_document(base: str) -> dict:
    with urllib.request.urlopen(f"{base}/openapi.json", timeout=10) as response:
        return json.loads(response.read())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_and_fetch() -> dict:
    """Start gunicorn on a free port in a temporary instance folder, fetch the document, stop it."""
    with tempfile.TemporaryDirectory(prefix="delta-sdk-") as home:
        port = _free_port()
        env = {key: value for key, value in os.environ.items()
               if key not in {"DATABASE_URL", "REDIS_URL", "TEST_DATABASE_URL", "TEST_REDIS_URL", "PORT", "BIND"}}
        env.update(APP_ENV="development", INSTANCE_PATH=home, DATABASE_URL=f"sqlite:///{home}/sdk.db",
                   PORT=str(port), WEB_CONCURRENCY="1", PROMETHEUS_MULTIPROC_DIR=f"{home}/metrics")
        subprocess.run([BIN / "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        process = subprocess.Popen([BIN / "gunicorn", "--config", "deploy/gunicorn.conf.py", "wsgi:app"],
                                   cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    return fetch_document(f"http://127.0.0.1:{port}")
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise
                    time.sleep(0.2)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)


def _run(command: list, **kwargs) -> None:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")


def generate_python(document: Path, out: Path) -> Path:
    """openapi-python-client → out/python/delta_client (import it with out/python on sys.path)."""
    target = out / "python" / PACKAGE
    config = out / "openapi-python-client.yaml"
    config.write_text(f"package_name_override: {PACKAGE}\nproject_name_override: delta-client\n")
    _run([BIN / "openapi-python-client", "generate", "--path", document, "--output-path", target,
          "--overwrite", "--meta", "none", "--config", config])
    return target.parent


def generate_typescript(document: Path, out: Path) -> Path:
    """openapi-typescript → out/delta.d.ts (`paths`, `components`, `operations`)."""
    target = out / "delta.d.ts"
    _run(["npx", "--yes", OPENAPI_TYPESCRIPT, document, "-o", target])
    return target


def typecheck(out: Path) -> None:
    """`tsc --strict` over sdk/walk.ts next to the generated delta.d.ts: a type regression fails it."""
    shutil.copy(ROOT / "sdk" / "walk.ts", out / "walk.ts")
    _run(["npx", "--yes", "-p", TYPESCRIPT, "tsc", "--strict", "--noEmit", "--target", "es2020",
          "--moduleResolution", "node", out / "walk.ts"])


def generate(out: Path, base: str | None = None) -> Path:
    """Fetch the live document and write both clients under `out`; returns the document's path."""
    out.mkdir(parents=True, exist_ok=True)
    document = out / "openapi.json"
    document.write_text(json.dumps(fetch_document(base) if base else serve_and_fetch(), indent=2))
    generate_python(document, out)
    generate_typescript(document, out)
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (default: start a throw-away one)")
    parser.add_argument("--out", default=str(ROOT / "build" / "sdk"), type=Path)
    args = parser.parse_args()
    out = Path(args.out)
    generate(out, args.url)
    typecheck(out)
    print(f"Python client: {out / 'python' / PACKAGE}\nTypeScript types: {out / 'delta.d.ts'}")


if __name__ == "__main__":
    main()
