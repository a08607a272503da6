"""Celery tasks (`@shared_task`): they take ids, call the same services as the web doors, and run
inside the Flask app context.

The Celery app and its reliability settings are built with the Flask app (webapp/celery_app.py,
Flask's `celery_init_app`); `tasks.worker` is the worker's and beat's entry point.
"""
