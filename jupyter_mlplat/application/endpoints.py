"""How an area declares its endpoints, once: method, path, request, response, operation.

An area is a class whose operations are decorated with :func:`endpoint`::

    class GovernanceArea(Area):
        name = "governance"

        @endpoint("POST", "api/approvals", CreateApprovalRequest, DescribeApprovalRequest,
                  status=201)
        def request_approval(self, context, request): ...

From that one declaration the service derives its routes
(:mod:`jupyter_mlplat.service.app`), the HTTP clients their calls and the client
classes their methods (:mod:`jupyter_mlplat.client`), and the in-process transport
calls the operation directly. Path fields (``{request_id}``) are fields of the
request model; the other fields travel in the query (GET) or the JSON body.

Declarations import only pydantic and :mod:`jupyter_mlplat.api`; operations import
the domain modules they need when they run, so a kernel that only talks HTTP never
loads SQLAlchemy or MLflow for them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import ValidationError

from ..api.base import DEFAULT_TEXT_LIMIT, ApiModel
from ..errors import TooLarge, UsageError
from ..identity import Identity

_PATH_FIELD = re.compile(r"\{([a-z_]+)\}")
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Context:
    """Who is calling: their identity and whether the token is a ``user``'s or a ``service``'s."""

    identity: Identity
    kind: str = "user"


@dataclass(frozen=True)
class Endpoint:
    """One operation of the platform and how it is reached over HTTP."""

    name: str
    area: str
    method: str
    path: str
    request: type[ApiModel]
    response: type[ApiModel]
    status: int = 200
    public: bool = False
    summary: str = ""
    path_fields: tuple[str, ...] = field(default=())

    @property
    def mutating(self) -> bool:
        return self.method in MUTATING

    @property
    def pattern(self) -> str:
        """The path as a tornado route regex (each path field one segment)."""
        return _PATH_FIELD.sub(r"(?P<\1>[^/]+)", self.path)

    def url_path(self, request: ApiModel) -> str:
        from urllib.parse import quote

        return _PATH_FIELD.sub(lambda m: quote(str(getattr(request, m[1])), safe=""), self.path)

    def payload(self, request: ApiModel) -> dict[str, Any]:
        """The request's fields that are not in the path (JSON-ready, unset ones left out)."""
        data = request.model_dump(mode="json", exclude_unset=True)
        return {k: v for k, v in data.items() if k not in self.path_fields and v is not None}


def endpoint(
    method: str,
    path: str,
    request: type[ApiModel],
    response: type[ApiModel],
    *,
    status: int = 200,
    public: bool = False,
) -> Callable:
    """Declare the decorated area method as an endpoint (see the module docstring)."""

    def mark(function: Callable) -> Callable:
        summary = (function.__doc__ or "").strip().split("\n")[0]
        function.__endpoint__ = {
            "method": method,
            "path": path,
            "request": request,
            "response": response,
            "status": status,
            "public": public,
            "summary": summary,
        }
        return function

    return mark


class Area:
    """One area of the platform (governance, later serving, jobs, pipelines).

    Subclasses set ``name`` and decorate operations with :func:`endpoint`; each
    operation takes ``(context, request)`` and returns its response model. An area
    is built with the settings and the shared :class:`Resources`.
    """

    name: ClassVar[str] = ""
    endpoints: ClassVar[tuple[Endpoint, ...]] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        declared = []
        for attr, value in vars(cls).items():
            spec = getattr(value, "__endpoint__", None)
            if spec is None:
                continue
            fields = tuple(_PATH_FIELD.findall(spec["path"]))
            missing = [f for f in fields if f not in spec["request"].model_fields]
            if missing:
                raise TypeError(f"{cls.__name__}.{attr}: path fields {missing} not in the request")
            declared.append(Endpoint(name=attr, area=cls.name, path_fields=fields, **spec))
        cls.endpoints = tuple(declared)

    def __init__(self, settings, resources) -> None:
        self.settings = settings
        self.resources = resources


def _sentence(error: dict) -> str:
    where = ".".join(str(p) for p in error.get("loc", ())) or "the request"
    message = error.get("msg", "is invalid").rstrip(".")
    if error.get("type") == "extra_forbidden":
        return f"{where} is not a field of this request; leave it out"
    if error.get("type") == "missing":
        return f"{where} is required"
    return f"{where}: {message}"


def parse_request(
    endpoint: Endpoint, data: Mapping[str, Any], *, max_text_bytes: int = DEFAULT_TEXT_LIMIT
) -> ApiModel:
    """``data`` validated as the endpoint's request model.

    A field over the text limit is :class:`TooLarge` (413); anything else wrong is a
    :class:`UsageError` (400) naming the first bad field, in one sentence.
    """
    try:
        return endpoint.request.model_validate(
            dict(data), context={"max_text_bytes": max_text_bytes}
        )
    except ValidationError as exc:
        errors = exc.errors()
        for error in errors:
            if error.get("type") == "too_large":
                raise TooLarge(f"{error['msg']}.") from None
        first = errors[0]
        more = f" ({len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise UsageError(
            f"Invalid {endpoint.name.replace('_', ' ')} request: {_sentence(first)}{more}."
        ) from None


def page_of(rows: list, limit: int, describe, response):
    """A list endpoint's page: the first ``limit`` of ``rows`` (fetched ``limit + 1``, so
    that one more says there is a next page), each through ``describe``."""
    more = len(rows) > limit
    return response(
        items=[describe(row) for row in rows[:limit]],
        next_cursor=str(rows[limit - 1].id) if more else None,
    )
