"""What every REST schema shares: strict models, bounded text, one pagination shape."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo
from pydantic_core import PydanticCustomError

# Ids and sequence numbers live in 64-bit signed columns; larger numbers are a bad request.
MAX_ID = 2**63 - 1
DEFAULT_TEXT_LIMIT = 4096

T = TypeVar("T")


class ApiModel(BaseModel):
    """Base of every request and response: unknown fields are refused, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class OrmModel(ApiModel):
    """A response built from an ORM row with ``Model.model_validate(row)``."""

    model_config = ConfigDict(from_attributes=True)


def _bounded(value: str | None, info: ValidationInfo) -> str | None:
    """Free text no longer than the service's ``max_text_bytes`` (validation context)."""
    if value is None:
        return value
    limit = (info.context or {}).get("max_text_bytes", DEFAULT_TEXT_LIMIT)
    size = len(value.encode("utf-8"))
    if size > limit:
        raise PydanticCustomError(
            "too_large",
            "{field} is {size} bytes, more than the limit of {limit} bytes; shorten it",
            {"field": info.field_name, "size": size, "limit": limit},
        )
    return value


FreeText = Annotated[str, AfterValidator(_bounded)]
"""A user-written sentence (reason, comment): bounded by ``max_text_bytes``."""

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""A database id: a whole number from 1 to 2**63 - 1."""

Limit = Annotated[int, Field(ge=1, le=1000)]
Cursor = Annotated[str, Field(pattern=r"^[0-9]{1,19}$")]
"""An opaque page position; today the last key of the previous page."""


class ListRequest(ApiModel):
    """What every list endpoint takes: where to continue and how many."""

    cursor: Cursor | None = None
    limit: Limit = 100

    def after(self) -> int:
        """The cursor as the key to continue after (0: from the start)."""
        return int(self.cursor) if self.cursor else 0


class Page(ApiModel, Generic[T]):
    """A page of a list: its items and, when there are more, the cursor of the next page."""

    items: list[T]
    next_cursor: str | None = None


class DescribeError(ApiModel):
    """Every 4xx/5xx answer: one sentence saying what was wrong and what to do, and the
    stable code of its error class (see :mod:`jupyter_mlplat.errors`)."""

    error: str
    code: str = "error"
