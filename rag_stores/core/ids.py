"""User ids <-> engine point ids.

Both engines want UUIDs. A user id that already is a UUID is used as it is; any
other string maps to a deterministic UUIDv5, so re-adding the same id overwrites
instead of duplicating. The original id is stored beside the data (field `doc_id`)
and every read returns it.
"""

from __future__ import annotations

import uuid

# Fixed namespace: changing it would orphan every stored record (data contract).
NAMESPACE = uuid.UUID("6f1d8a52-3f7e-5b5c-9a57-2c1d0e5b7a10")


def to_point_id(user_id: str) -> str:
    if not isinstance(user_id, str) or not user_id:
        raise ValueError(f"id must be a non-empty string, got {user_id!r}")
    try:
        return str(uuid.UUID(user_id))
    except ValueError:
        return str(uuid.uuid5(NAMESPACE, user_id))


def new_id() -> str:
    return str(uuid.uuid4())
