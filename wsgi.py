"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""
import gc

from webapp import create_app

app = create_app()

# The garbage collector, tuned for a server process (each gunicorn worker imports this module):
# - gc.freeze(): the ~185,000 objects of start-up (modules, mappers, the GraphQL schema) live as
#   long as the process, so full collections stop walking them; a full pass cost ~85 ms a time.
# - a first generation of 50,000 allocations instead of 700 (and 20 collections a generation, not
#   10): a request's garbage is freed by reference counting before a collection has to look at it.
# Measured with gc.callbacks in the workers serving the nested GraphQL list (bench/run.py): about
# 640 collections costing ~0.85 s of 13 s CPU (6.5 %) before; after, almost none while serving.
# Tests build apps through create_app() and keep the interpreter's defaults.
gc.freeze()
gc.set_threshold(50_000, 20, 20)
