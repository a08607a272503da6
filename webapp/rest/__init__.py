"""The REST door: flask-smorest blueprints over the services."""


def register_blueprints(api) -> None:
    from webapp.rest import accounts, auth, jobs, posts, profiles, sessions, users

    for module in (auth, accounts, users, sessions, profiles, posts, jobs):
        api.register_blueprint(module.blp, url_prefix=f"/api/v1{module.PREFIX}")
