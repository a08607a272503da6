#!/bin/sh
# web: migrate, then hand the process to gunicorn. migrate: only that (compose runs it once,
# before everything else). realtime: the ASGI process for subscriptions and event streams
# (uvicorn; client addresses from the proxy's X-Forwarded-For when FORWARDED_ALLOW_IPS trusts it).
# worker/beat: Celery. Anything else runs as given.
set -e
case "${1:-web}" in
  web)
    flask --app wsgi db upgrade
    exec gunicorn --config deploy/gunicorn.conf.py --bind "0.0.0.0:${PORT:-8000}" wsgi:app ;;
  realtime)
    exec uvicorn webapp.realtime.asgi:app --host 0.0.0.0 --port "${REALTIME_PORT:-8001}" --proxy-headers \
      --no-access-log ;;
  migrate)
    exec flask --app wsgi db upgrade ;;
  worker)
    shift
    exec celery -A tasks.worker worker --loglevel "${LOG_LEVEL:-INFO}" -Q "${CELERY_QUEUES:-email,heavy}" "$@" ;;
  beat)
    exec celery -A tasks.worker beat --loglevel "${LOG_LEVEL:-INFO}" --schedule /tmp/celerybeat-schedule ;;
  *)
    exec "$@" ;;
esac
