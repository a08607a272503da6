"""Extensions, created once and unbound; `create_app` attaches them. Imports nothing of the app."""
from flask_caching import Cache
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from webapp.db import Database
from webapp.rest.api import RestApi

db = Database()
api = RestApi()
jwt = JWTManager()
cache = Cache()
limiter = Limiter(key_func=get_remote_address)
