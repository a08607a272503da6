"""Extensions, created once and unbound; `create_app` attaches them. Imports only leaf modules.

The REST door's Api is built in the door (webapp/rest/api.py): it is the door itself, and
nothing below the doors uses it.
"""
from flask_caching import Cache

from webapp.compat.flask_jwt_extended import SingleKeyJWTManager
from webapp.db import Database

db = Database()
jwt = SingleKeyJWTManager()
cache = Cache()
# The rate limiter is built per app in webapp/ratelimit.py: flask-limiter keeps its storage
# on the instance, and tests run apps with different limits side by side.
