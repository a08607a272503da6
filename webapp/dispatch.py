"""Hand work to the Celery workers by task name, so services never import the tasks package.

Services call `enqueue` only after the transaction that created the work has committed: a
worker never looks for a row that is not there yet. A broker that is down is logged and
reported (False), never a 500: the caller decides whether that is worth a 503.

In eager mode (no broker) the task runs at once in a short-lived thread, which gives it its
own scoped session and app context, as a worker would have, instead of sharing the caller's.
"""
from __future__ import annotations

import logging
import threading

from flask import current_app

from webapp.observability import current_request_id, task_request_id

log = logging.getLogger("webapp.dispatch")


def enqueue(name: str, *args) -> bool:
    celery = current_app.extensions["celery"]
    task = celery.tasks[name]
    if celery.conf.task_always_eager:
        request_id = current_request_id()

        def run():
            task_request_id.set(request_id)
            task.apply(args=args)

        worker = threading.Thread(target=run, name=f"eager:{name}")
        worker.start()
        worker.join()
        return True
    headers = {"request_id": current_request_id()}
    try:
        task.apply_async(args=args, headers=headers)
    except Exception as exc:  # kombu.OperationalError, redis ConnectionError, timeouts
        log.warning("broker unavailable, %s%r not queued: %s", name, args, exc)
        return False
    return True
