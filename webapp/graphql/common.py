"""What every GraphQL domain module shares: partial update inputs."""
from __future__ import annotations

from enum import Enum

import strawberry


class PartialInput:
    """An update input whose fields may be left out: `changes()` is what the client sent."""

    def changes(self) -> dict:
        """Only the fields the client sent, as the service's `changes` mapping (enums as their strings)."""
        return {key: value.value if isinstance(value, Enum) else value
                for key, value in vars(self).items() if value is not strawberry.UNSET}
