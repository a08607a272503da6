"""SQLAlchemy (setup.cfg: <2.2): a detached copy of a known row, built as the ORM's loader builds one.

Replaces the mapped class's constructor for the caller (webapp/auth/tokens.py `load_principal`,
on every signed-in request): `Mapper.class_manager.new_instance()` makes the instance without
running `__init__` or its init event, as the ORM's own loader does, and the row's values go
straight into its `__dict__` as loaded, unchanged attributes (no change events); then the public
`make_transient_to_detached` gives it its identity.

Measured (valgrind, a User and its Profile, per request): this way 127 k instructions; the public
constructor with the same `__dict__` load +28 k; the constructor with the documented
`attributes.set_committed_value` per attribute +164 k (~4 % of a `/users/me`, past the bench's
±0.05 M noise), and the constructor with keyword values cost about 3 % too. So the private
`class_manager` stays, here, guarded by tests/test_compat.py.
"""
from __future__ import annotations

from sqlalchemy.orm import make_transient_to_detached


def new_instance(model):
    """An empty instance of `model` with its ORM state, no constructor run (as the loader makes one)."""
    return model.__mapper__.class_manager.new_instance()


def known_row(instance, values: dict, **related):
    """`instance` as a detached copy of a known row, built the way the ORM's own loader builds one.

    The values go straight into its state as loaded, unchanged attributes: no constructor and
    no change events (through the constructor, user and profile cost about 3 % of a
    `/users/me`; `make bench-instructions`). Attached to a session it is the row it names,
    never an INSERT; attributes not given (other relationships) load lazily there.
    """
    instance.__dict__.update(values, **related)
    make_transient_to_detached(instance)
    return instance


def locks_rows(statement) -> bool:
    """Whether a SELECT takes row locks (`with_for_update()`, `refresh(with_for_update=True)`).

    A hot standby refuses them, so the replica router (webapp/replicas/routing.py) sends such a
    statement to the primary. SQLAlchemy keeps the lock request in the private `_for_update_arg`
    and has no public accessor; tests/test_replicas.py fails if that stops holding.
    """
    return getattr(statement, "_for_update_arg", None) is not None
