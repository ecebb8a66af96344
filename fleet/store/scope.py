"""What a caller may see: the one place the fleet's visibility rule lives.

Every store query the web makes takes a ``Scope`` and filters with it in SQL, so a center manager
cannot reach another center by any URL, export or API: the rows are never read. The CLI and the MQTT
ingest use ``Scope.everything()``, which must be asked for by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, or_, select, true

from fleet.store.schema import centers


@dataclass(frozen=True)
class Scope:
    kind: Literal["everything", "province", "center"]
    id: str | None = None

    def __post_init__(self) -> None:
        if (self.kind == "everything") != (self.id is None):
            raise ValueError(f"scope {self.kind!r} {'takes no' if self.id else 'needs an'} id")

    @classmethod
    def everything(cls) -> Scope:
        return cls("everything")

    @classmethod
    def province(cls, province_id: str) -> Scope:
        return cls("province", province_id)

    @classmethod
    def center(cls, center_id: str) -> Scope:
        return cls("center", center_id)

    def centers_filter(self, center_column: Any) -> ColumnElement[bool]:
        """SQL condition on a ``center_id`` column: the rows of the centers this scope sees."""
        if self.kind == "everything":
            return true()
        if self.kind == "center":
            return center_column == self.id
        return center_column.in_(select(centers.c.id).where(centers.c.province_id == self.id))

    def homes_filter(self, province_column: Any, center_column: Any) -> ColumnElement[bool]:
        """SQL condition for rows that belong either to a province or to a center (users, audit)."""
        if self.kind == "everything":
            return true()
        if self.kind == "center":
            return center_column == self.id
        return or_(province_column == self.id, self.centers_filter(center_column))

    def sees_province(self, province_id: str | None) -> bool:
        return self.kind == "everything" or (self.kind == "province" and province_id == self.id)

    def __str__(self) -> str:
        return self.kind if self.id is None else f"{self.kind}:{self.id}"
