"""`make run`: the API (gunicorn) and the realtime process (uvicorn) in one terminal, stopped together.

Each runs in its own process group; Ctrl-C (SIGINT) or SIGTERM stops both, and when either one
exits the other is stopped too, so a half-running stack never lingers. Production runs them as
separate services instead (deploy/compose.yaml).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def commands(host: str, port: str, realtime_port: str) -> list[list[str]]:
    return [
        [str(BIN / "gunicorn"), "--config", "deploy/gunicorn.conf.py", "--bind", f"{host}:{port}", "wsgi:app"],
        [str(BIN / "uvicorn"), "webapp.realtime.asgi:app", "--host", host, "--port", realtime_port,
         "--no-access-log"],
    ]


def main() -> int:
    host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "8000")
    realtime_port = os.environ.get("REALTIME_PORT", "8001")
    children = [subprocess.Popen(command, start_new_session=True) for command in commands(host, port, realtime_port)]
    print(f"==> API on http://{host}:{port}, realtime on http://{host}:{realtime_port} (Ctrl-C stops both)",
          flush=True)
    stopping = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, _frame: stopping.append(number))
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.2)
    for child in children:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    return 0 if stopping else max(child.returncode or 0 for child in children) or 1


if __name__ == "__main__":
    sys.exit(main())
