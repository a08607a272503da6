"""How lists are paged, through both doors: page sizes, the deep-paging bounds, the cursor codec.

PRODUCT.md: the default page size is 20 and the cap 100, for REST's `page_size` and GraphQL's
`limit` alike. The doors read these numbers here and nowhere else: REST's Blueprint.paginate
defaults (webapp/rest/common.py), its `page` bound, GraphQL's `limit` and `skip` arguments and
the document size count (webapp/graphql/cost.py).

Out-of-range input is refused differently by each door, as each door's contract says: REST
answers 422 on `page_size` above the cap (the OpenAPI says `maximum: 100`); GraphQL clamps
`limit` to the cap and refuses a negative one (BAD_USER_INPUT, in cost.py before execution).
"""
from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from webapp.db import MAX_ID
from webapp.errors import BadToken, Invalid

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100  # the cap: a larger list costs more than any screen shows

# Deep paging by OFFSET costs what it skips. Both bounds are here, side by side, because the two
# doors' published contracts fix them: REST's `page` (the OpenAPI's `maximum`) is an input bound
# that keeps a page number past 64 bits from the database, and REST lists that grow (posts) walk
# deeper by cursor; GraphQL's `skip` on posts (its schema description) is the cost bound, with
# REST's cursor as the way deeper. Making them one number changes one of the two contracts.
MAX_PAGE = 1_000_000
MAX_SKIP = 10_000

BAD_CURSOR = "Not a valid cursor for this list (it belongs to the same filters and sort)."
DATETIME_KEYS = ("created_at", "updated_at")
TEXT_KEYS = ("title",)


def clamp(limit: int | None, default: int = DEFAULT_PAGE_SIZE) -> int:
    """A GraphQL list size: the default when not given, at most the cap (negatives: see cost.py)."""
    if limit is None:
        return default
    return max(0, min(int(limit), MAX_PAGE_SIZE))


def skip(value: int | None, *, bound: int | None = None) -> int:
    """A GraphQL `skip`, with the deep-paging bound where a list has one (posts: MAX_SKIP)."""
    value = max(0, int(value or 0))
    if bound is not None and value > bound:
        raise Invalid("Validation failed.", errors={"skip": [f"Must be at most {bound}."]})
    return value


def encode_cursor(sort: str, value, row_id: int) -> str:
    """Opaque to clients: the sort and the (sort value, id) of the last item they saw."""
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort, value, int(row_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str):
    """(value, id) of a cursor made for `sort`; anything else is a 400 on `cursor`.

    The value's type follows the sort key: a timezone-aware datetime for `*_at`, a string for a
    text key, and for `id` the id itself.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, value, row_id = json.loads(raw)
        if cursor_sort != sort or type(row_id) is not int or not 0 <= row_id <= MAX_ID:
            raise ValueError
        key = sort.lstrip("-")
        if key in DATETIME_KEYS:
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError
        elif key in TEXT_KEYS:
            if not isinstance(value, str):
                raise ValueError
        else:
            value = row_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
        # 400, like any other opaque token we did not issue for this request (422 is for the schema)
        raise BadToken(BAD_CURSOR, errors={"cursor": [BAD_CURSOR]}) from None
    return value, row_id
