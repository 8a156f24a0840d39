"""Engine- and framework-neutral core: records, queries, filters, the backend protocol."""

from .backend import Backend
from .filters import And, Field, FilterError, Node, Not, Or, from_dict, from_llama
from .ids import to_point_id
from .query import CollectionNotFoundError, Query, UnsupportedError
from .records import Group, Hit, Record, SparseVector, check_record

__all__ = [
    "And", "Backend", "CollectionNotFoundError", "Field", "FilterError", "Group", "Hit", "Node",
    "Not", "Or", "Query", "Record", "SparseVector", "UnsupportedError", "check_record",
    "from_dict", "from_llama", "to_point_id",
]
