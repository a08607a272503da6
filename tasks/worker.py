"""Worker entry point: `celery -A tasks.worker worker -Q email,heavy` and `celery -A tasks.worker beat`."""
from webapp import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
