"""Extensions, created once and unbound; `create_app` attaches them. Imports only leaf modules."""
from flask_caching import Cache

from webapp.auth.jwt_manager import SingleKeyJWTManager
from webapp.db import Database
from webapp.rest.api import RestApi

db = Database()
api = RestApi()
jwt = SingleKeyJWTManager()
cache = Cache()
# The rate limiter is built per app in webapp/ratelimit.py: flask-limiter keeps its storage
# on the instance, and tests run apps with different limits side by side.
