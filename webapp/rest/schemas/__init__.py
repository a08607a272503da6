"""Marshmallow schemas of the REST door, one module per domain: what goes in, what comes out, the OpenAPI docs."""
