"""/api/v1/meta: what a client needs before anything else, such as where the realtime process is."""
from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView
from marshmallow import fields

from webapp.realtime.urls import streaming_url
from webapp.rest.common import Blueprint, operation
from webapp.rest.schemas.base import Schema

PREFIX = ""
blp = Blueprint("meta", __name__, description="About this API.")


class MetaSchema(Schema):
    api_version = fields.String(required=True, metadata={"example": "v1"})
    streaming_url = fields.String(required=True, metadata={
        "example": "http://127.0.0.1:8001",
        "description": "The realtime process: `{streaming_url}/graphql` (WebSocket, graphql-transport-ws) "
                       "and `{streaming_url}/api/v1/events` (Server-Sent Events)."})


@blp.route("/meta")
class Meta(MethodView):
    @operation(blp, "getMeta", security=[])
    @blp.response(200, MetaSchema)
    def get(self):
        """The API version and where to stream events from

        `streaming_url` is REALTIME_PUBLIC_URL when set (a proxy routes it), else this host on
        REALTIME_PORT.
        """
        return {"api_version": "v1", "streaming_url": streaming_url(current_app.config, request.host)}
