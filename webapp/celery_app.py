"""The Celery app, built from the Flask app the documented way (Flask's `celery_init_app`).

It lives in the app package, as in Flask's Celery example: `create_app` attaches it, so the app
never imports the tasks package's entry point. The tasks themselves (`@shared_task`) are in
tasks/; `celery -A tasks.worker` builds the app through the same factory.

Every task runs inside the Flask app context (`FlaskTask`), takes ids rather than objects,
and calls the same services as the web doors. Reliability choices, in one place:

- `task_acks_late` + `task_reject_on_worker_lost`: a task is acknowledged only when it has
  finished, so a worker killed mid-task (SIGKILL, OOM, host lost) leaves the message on Redis
  and another worker runs it again; tasks are written to be safe to run twice.
- `worker_prefetch_multiplier = 1`: a worker holds one unstarted message at a time, so a long
  export never sits on messages another worker could run.
- Two queues, `email` and `heavy`: a 100,000-row export never delays a verification email;
  ops run one worker per queue and scale them apart.
- Hard and soft time limits on every task, and a Redis `visibility_timeout` longer than the
  longest hard limit, so a running task is never handed to a second worker.
- Transient errors (SMTP 4xx, timeouts, a database blip) retry with exponential backoff and
  jitter; the broker itself must run with `maxmemory-policy noeviction` so no task is evicted.
- With no broker configured, tasks run eagerly in-process (the embedded default).
"""
from __future__ import annotations

from celery import Celery, Task
from celery.schedules import crontab
from kombu import Queue

EMAIL, HEAVY = "email", "heavy"


def broker_url(config) -> str:
    return config.get("CELERY_BROKER_URL") or config.get("REDIS_URL") or ""


def celery_settings(config) -> dict:
    """Celery's settings from Delta's: the reliability choices explained in this module's docstring."""
    broker = broker_url(config)
    prefix = config.get("CELERY_QUEUE_PREFIX", "")
    email_q, heavy_q = prefix + EMAIL, prefix + HEAVY
    heavy_limit = config["HEAVY_TASK_TIME_LIMIT"]
    from webapp.jobs.stalls import detector_interval

    relay_every, stall_every = config["OUTBOX_RELAY_SECONDS"], detector_interval(config)
    return {
        "broker_url": broker or "memory://",
        "result_backend": broker or None,
        "task_ignore_result": True,          # job state lives in the database, not in results
        "task_always_eager": not broker,
        "task_eager_propagates": False,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_queues": [Queue(email_q), Queue(heavy_q)],
        "task_default_queue": heavy_q,
        # The outbox relay and the stall detector are quick and must not wait behind an export.
        "task_routes": {"delta.email.*": {"queue": email_q}, "delta.jobs.*": {"queue": heavy_q},
                        "delta.outbox.*": {"queue": email_q}, "delta.events.*": {"queue": email_q},
                        "delta.housekeeping.requeue_stalled_jobs": {"queue": email_q},
                        "delta.housekeeping.*": {"queue": heavy_q}},
        "task_soft_time_limit": heavy_limit - 30,
        "task_time_limit": heavy_limit,
        "task_annotations": TimeLimits(config["EMAIL_TASK_TIME_LIMIT"], heavy_limit),
        "broker_transport_options": {"visibility_timeout": config["CELERY_VISIBILITY_TIMEOUT"]},
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 3,
        # A request must not hang on a dead broker: a few quick tries, then the caller decides.
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0,
                                      "interval_step": 0.3, "interval_max": 0.5},
        "beat_schedule": {
            "purge-auth-records": {"task": "delta.housekeeping.purge_auth_records",
                                   "schedule": crontab(minute=17)},
            "purge-old-jobs": {"task": "delta.housekeeping.purge_old_jobs",
                               "schedule": crontab(minute=43, hour=3)},
            "purge-idempotency-keys": {"task": "delta.housekeeping.purge_idempotency_keys",
                                       "schedule": crontab(minute=29)},
            "purge-outbox": {"task": "delta.outbox.purge", "schedule": crontab(minute=53)},
            # Frequent: each expires after one period, so a backlog built while no worker ran
            # is one run, not hundreds.
            "relay-outbox": {"task": "delta.outbox.relay", "schedule": relay_every,
                             "options": {"expires": relay_every}},
            "relay-events": {"task": "delta.events.relay", "schedule": config["EVENTS_RELAY_SECONDS"],
                             "options": {"expires": config["EVENTS_RELAY_SECONDS"]}},
            "requeue-stalled-jobs": {"task": "delta.housekeeping.requeue_stalled_jobs", "schedule": stall_every,
                                     "options": {"expires": stall_every}},
        },
    }


class TimeLimits:
    """Per-queue time limits: emails fail fast, exports get the long limit (task_annotations)."""

    def __init__(self, email_limit: int, heavy_limit: int):
        self.email_limit, self.heavy_limit = email_limit, heavy_limit

    def annotate(self, task):
        limit = self.email_limit if task.name.startswith("delta.email.") else self.heavy_limit
        return {"time_limit": limit, "soft_time_limit": max(1, limit - max(5, limit // 20))}


def celery_init_app(app, **overrides) -> Celery:
    """Attach a Celery app to `app` (Flask's documented pattern); `overrides` adjust its settings."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.config_from_object({**celery_settings(app.config), **overrides})
    celery.set_default()
    app.extensions["celery"] = celery
    from tasks import email, events, housekeeping, jobs, signals  # noqa: F401  (register tasks and signal handlers)

    celery.finalize()
    return celery
