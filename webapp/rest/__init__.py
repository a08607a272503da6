"""The REST door: flask-smorest blueprints over the services."""


def register_blueprints(api) -> None:
    from webapp.rest import accounts, auth, jobs, meta, mfa, oidc, posts, profiles, sessions, tokens, users

    for module in (meta, auth, mfa, oidc, accounts, users, sessions, tokens, profiles, posts, jobs):
        api.register_blueprint(module.blp, url_prefix=f"/api/v1{module.PREFIX}")
    register_event_renderers()


def register_event_renderers() -> None:
    """Realtime events carry the REST resource's JSON (webapp/events): posts and jobs as this door shows them."""
    from webapp.events import register_renderer
    from webapp.jobs.models import Job
    from webapp.jobs.services import job_view
    from webapp.posts.models import Post
    from webapp.posts.services import post_view
    from webapp.rest.schemas.jobs import JobSchema
    from webapp.rest.schemas.posts import PostSchema

    post_schema, job_schema = PostSchema(), JobSchema()
    register_renderer(Post, lambda post: post_schema.dump(post_view(post)))
    register_renderer(Job, lambda job: job_schema.dump(job_view(job)))
