"""The one seam between request code and background work: `run_task(name, *args)`.

Services call it after their transaction has committed, with ids (never objects), so the
work can run anywhere. Today every task runs eagerly, in-process, right away; issue 3's
Celery app replaces the body of `run_task` with `celery.send_task(name, args)` (or the
`@shared_task`'s `.delay`) and the registered functions become the task bodies — callers
do not change. A failing eager task is logged, not raised: like a worker, it must not undo
or fail the request that enqueued it.
"""
from __future__ import annotations

import importlib
import logging

log = logging.getLogger("webapp.background")

# task name → "module:function"; the function takes only JSON-friendly arguments.
TASKS = {
    "avatars.make_thumbnails": "webapp.profiles.avatars:make_thumbnails",
}


def resolve(name: str):
    module, _, function = TASKS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def run_task(name: str, *args) -> None:
    """Run task `name` with `args` (eagerly for now; see the module docstring)."""
    function = resolve(name)
    try:
        function(*args)
    except Exception:
        log.exception("background task %s%r failed", name, args)
