"""User ids <-> engine point ids.

Both engines want UUIDs. A user id that already is a UUID is used as it is; any
other string maps to a deterministic UUIDv5, so re-adding the same id overwrites
instead of duplicating. The original id is stored beside the data (field `doc_id`)
and every read returns it. Qdrant also takes unsigned 64-bit integers: an int user id
is its own point id (as langchain-qdrant stores it), and reads return the int.
"""

from __future__ import annotations

import uuid

# Fixed namespaces: changing them would orphan every stored record (data contract).
NAMESPACE = uuid.UUID("6f1d8a52-3f7e-5b5c-9a57-2c1d0e5b7a10")
TENANT_NAMESPACE = uuid.UUID("3b0c5a7e-91d2-5f44-8e6b-0d7c2a9f4e18")


# An int user id: an unsigned 64-bit integer (Qdrant's integer point ids).
MAX_INT_ID = 2**64 - 1
UserId = str | int


def is_int_id(user_id: object) -> bool:
    return isinstance(user_id, int) and not isinstance(user_id, bool) and 0 <= user_id <= MAX_INT_ID


def qdrant_point_id(user_id: UserId) -> UserId:
    """A Qdrant point id: an int user id is itself, a uuid.UUID its string, a string as
    `to_point_id`."""
    if isinstance(user_id, uuid.UUID):
        return str(user_id)
    return user_id if is_int_id(user_id) else to_point_id(user_id)  # type: ignore[arg-type]


def to_point_id(user_id: str) -> str:
    """The UUID of a user id: a UUID string is its canonical form, any other its UUIDv5."""
    if not isinstance(user_id, str) or not user_id:
        raise ValueError(f"id must be a non-empty string, got {user_id!r}")
    try:
        return str(uuid.UUID(user_id))
    except ValueError:
        return str(uuid.uuid5(NAMESPACE, user_id))


def tenant_point_id(tenant: str, user_id: str) -> str:
    """The point id of `user_id` in a tenant sharing a collection: a UUIDv5 of the id in a
    namespace of the tenant's own, so no two (tenant, id) pairs share a point, whatever
    characters they hold."""
    if not isinstance(user_id, str) or not user_id:
        raise ValueError(f"ids in a tenant store must be non-empty strings, got {user_id!r}")
    return str(uuid.uuid5(uuid.uuid5(TENANT_NAMESPACE, tenant), user_id))


def legacy_tenant_point_id(tenant: str, user_id: str) -> str:
    """The tenant point id of collections created before backends.qdrant.IDS_MARKER: ambiguous
    (("acme", "prod/s") and ("acme/prod", "s") share one), so only ever used together with a
    check of the stored tenant and user id (backends/qdrant.py)."""
    return to_point_id(f"tenant:{tenant}/{user_id}")


def new_id() -> str:
    return str(uuid.uuid4())
