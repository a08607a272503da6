"""/api/v1/posts and /api/v1/users/{id}/posts: published for anyone, drafts for author and admins."""
from __future__ import annotations

from urllib.parse import urlencode

from flask import g, request, url_for
from flask.views import MethodView

from webapp.extensions import db
from webapp.auth.current import optional_viewer
from webapp.posts import cached, services
from webapp.errors import BadToken
from webapp.rest.common import Blueprint, authenticated, operation, viewer
from webapp.rest.schemas.posts import (PostCreateSchema, PostListArgs, PostPatchSchema, PostPutSchema,
                                      PostSchema, UserPostListArgs)
from webapp.users.services import get_user

PREFIX = ""
blp = Blueprint("posts", __name__, description="Posts: anyone reads published ones; verified users write.")


# Public reads (`security: []`): a bearer token is optional and shows the caller's drafts too; a bad one is a 401.
BAD_TOKEN = (401, "A bearer token was sent and is invalid, expired or revoked (send none to read as anyone).")
PAGING = (400, "`cursor` and `page` were both sent, or the cursor cannot be read.")

LIST_HEADERS = {
    "X-Next-Cursor": {"description": "Opaque position after the last item, present when there are more: "
                                     "send it back as `cursor` (same filters and sort) for the next page. "
                                     "Walking by cursor costs the same at any depth; a deep `page` does not.",
                      "schema": {"type": "string"}},
    "Link": {"description": '`<url>; rel="next"`: the next page by cursor, when there are more.',
             "schema": {"type": "string"}},
}


def _page(pagination_parameters, cursor=None, **filters):
    """The page, its X-Pagination (total: see Blueprint._set_pagination_metadata) and next cursor."""
    if cursor is not None and "page" in request.args:
        raise BadToken("Send either cursor or page, not both.",
                       errors={"cursor": ["Send either cursor or page, not both."]})
    page = cached.list_page(db.session, optional_viewer(), offset=pagination_parameters.first_item,
                              limit=pagination_parameters.page_size, cursor=cursor, **filters)
    pagination_parameters.item_count = page["total"]
    g.pagination_estimate = not page["exact"]
    g.pagination_by_cursor = cursor is not None
    headers = {}
    if page["next_cursor"]:
        query = {key: values for key, values in request.args.lists() if key not in ("page", "cursor")}
        query["cursor"] = [page["next_cursor"]]
        headers["X-Next-Cursor"] = page["next_cursor"]
        headers["Link"] = f'<{request.base_url}?{urlencode(query, doseq=True)}>; rel="next"'
    return page["items"], headers


@blp.route("/posts")
class Posts(MethodView):
    @operation(blp, "listPosts", PAGING, BAD_TOKEN)
    @blp.etag
    @blp.arguments(PostListArgs, location="query")
    @blp.response(200, PostSchema(many=True), headers=LIST_HEADERS)
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List posts: published ones, plus your own drafts (all drafts for admins)

        Public: no token needed; with one, your drafts are listed too (all drafts for admins).
        Page with `page`/`page_size`, or walk with `cursor`: each response with more to come
        carries `X-Next-Cursor` and a `Link: <...>; rel="next"`; a cursor page costs the same at
        any depth, a deep `page` costs what it skips. `X-Pagination.total` is exact up to
        10,000 posts; above that (PostgreSQL) it is the planner's estimate and
        `"total_is_estimate": true`. A cursor response's `X-Pagination` carries only the total.
        """
        return _page(pagination_parameters, **args)

    @operation(blp, "createPost", (403, "The email address is not verified yet."))
    @authenticated(blp)
    @blp.arguments(PostCreateSchema)
    @blp.response(201, PostSchema, headers={"Location": "Location"})
    def post(self, data):
        """Write a post (needs a verified email); a draft unless published is true

        Answers the post, and its address in `Location`.
        """
        post = services.create_post(db.session, viewer(), **data)
        return services.post_view(post), {"Location": url_for("posts.PostById", post_id=post.id)}


@blp.route("/posts/<int:post_id>")
class PostById(MethodView):
    @operation(blp, "getPost", BAD_TOKEN)
    @blp.etag
    @blp.response(200, PostSchema)
    def get(self, post_id):
        """One post; a draft is 404 unless you wrote it or are an admin

        Public: no token needed for a published post; a draft needs its author's or an admin's.
        """
        return cached.post_card(db.session, optional_viewer(), post_id)

    @operation(blp, "replacePost", (403, "Not the author or an admin."), 412)
    @authenticated(blp)
    @blp.etag
    @blp.arguments(PostPutSchema)
    @blp.response(200, PostSchema)
    def put(self, data, post_id):
        """Replace title, content and published (author or admin)

        Send the ETag you read as `If-Match` to refuse (412) a change made since.
        """
        return self._update(data, post_id, replace=True)

    @operation(blp, "updatePost", (403, "Not the author or an admin."), 412)
    @authenticated(blp)
    @blp.etag
    @blp.arguments(PostPatchSchema, required=False)
    @blp.response(200, PostSchema)
    def patch(self, data, post_id):
        """Change some of title, content and published (author or admin)

        Fields left out keep their value. Send the ETag you read as `If-Match` to refuse (412) a
        change made since.
        """
        return self._update(data, post_id)

    @operation(blp, "deletePost", (403, "Not the author or an admin."), 412)
    @authenticated(blp)
    @blp.etag
    @blp.response(204)
    def delete(self, post_id):
        """Delete a post (author or admin)

        Send the ETag you read as `If-Match` to refuse (412) if the post changed since.
        """
        me = viewer()
        post = services.get_post(db.session, me, post_id)
        blp.check_etag(services.post_view(post), PostSchema)
        services.delete_post(db.session, me, post)

    @staticmethod
    def _update(data, post_id, replace=False):
        me = viewer()
        post = services.get_post(db.session, me, post_id)
        blp.check_etag(services.post_view(post), PostSchema)
        return services.post_view(services.update_post(db.session, me, post, data, replace=replace))


@blp.route("/users/<int:user_id>/posts")
class UserPosts(MethodView):
    @operation(blp, "listUserPosts", PAGING, BAD_TOKEN)
    @blp.etag
    @blp.arguments(UserPostListArgs, location="query")
    @blp.response(200, PostSchema(many=True), headers=LIST_HEADERS)
    @blp.paginate()
    def get(self, args, pagination_parameters, user_id):
        """A user's posts: drafts included for that user and admins

        Public: no token needed; with that user's token or an admin's, drafts are listed too.
        Page with `page`/`page_size`, or walk with `cursor`: each response with more to come
        carries `X-Next-Cursor` and a `Link: <...>; rel="next"`; a cursor page costs the same at
        any depth, a deep `page` costs what it skips. `X-Pagination.total` is exact up to
        10,000 posts; above that (PostgreSQL) it is the planner's estimate and
        `"total_is_estimate": true`. A cursor response's `X-Pagination` carries only the total.
        """
        user = get_user(db.session, user_id)
        return _page(pagination_parameters, author_id=user.id, **args)
