"""The sparse vector shape shared by encoders and stores: indices plus values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.values):
            raise ValueError(
                f"sparse vector has {len(self.indices)} indices but {len(self.values)} values"
            )
