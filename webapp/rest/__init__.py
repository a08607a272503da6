"""The REST door: flask-smorest blueprints over the services."""


def register_blueprints(api) -> None:
    from webapp.rest import auth, posts, profiles, users

    for module in (auth, users, profiles, posts):
        api.register_blueprint(module.blp, url_prefix=f"/api/v1{module.PREFIX}")
