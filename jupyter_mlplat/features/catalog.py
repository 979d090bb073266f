"""What a feature repository offers, and checking feature references against it.

The catalog is a small in-memory map view → features (+ join keys, PII flags) built from
Feast's cached registry and kept for a short TTL, so validating a request costs a few dict
look-ups instead of a registry walk. Nothing here imports Feast at module import time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NotFoundError, ServiceUnavailable, UsageError

# Tag values that flag a field or a feature view as personal data.
_TRUE = {"true", "1", "yes", "y"}
_MAX_LISTED = 20


class FeatureRepoUnavailable(ServiceUnavailable, NotFoundError):
    """The feature repository folder or its feature_store.yaml does not exist."""


def listing(names: Iterable[str]) -> str:
    """``a, b, c`` (at most 20 names, then ``and N more``)."""
    names = sorted(names)
    if not names:
        return "none"
    shown = ", ".join(names[:_MAX_LISTED])
    rest = len(names) - _MAX_LISTED
    return f"{shown} and {rest} more" if rest > 0 else shown


def check_repo(path: str | Path) -> Path:
    """The resolved repo folder, or :class:`FeatureRepoUnavailable` saying how to get one."""
    repo = Path(path).expanduser().resolve()
    fix = (
        f"run `python -m jupyter_mlplat.features.demo_repo {repo}` to create the demo repo "
        "or set MLPLAT_FEATURE_REPO to your Feast repository"
    )
    if not repo.is_dir():
        raise FeatureRepoUnavailable(f"The feature repository {repo} does not exist, so {fix}.")
    if not (repo / "feature_store.yaml").is_file():
        raise FeatureRepoUnavailable(
            f"The feature repository {repo} has no feature_store.yaml, so {fix}."
        )
    return repo


def parse_refs(refs) -> tuple[str, ...]:
    """Feature references as a tuple of ``view:feature`` (duplicates dropped, order kept).

    Accepts a list of strings or one comma-separated string.
    """
    if isinstance(refs, str):
        items = refs.split(",")
    elif isinstance(refs, Iterable):
        items = list(refs)
    else:
        raise UsageError(
            f"Feature references must be a list of 'view:feature' strings, not "
            f"{type(refs).__name__}, so pass e.g. ['customer_stats:monthly_spend']."
        )
    out: dict[str, None] = {}
    for item in items:
        if not isinstance(item, str):
            raise UsageError(
                f"Feature reference {item!r} is not a string, so write each one as "
                "'view:feature', e.g. 'customer_stats:monthly_spend'."
            )
        ref = item.strip()
        if not ref:
            continue
        view, sep, feature = ref.partition(":")
        if not sep or not view.strip() or not feature.strip() or ":" in feature:
            raise UsageError(
                f"Feature reference {ref!r} is not of the form 'view:feature', so write it "
                "like 'customer_stats:monthly_spend'."
            )
        out[f"{view.strip()}:{feature.strip()}"] = None
    if not out:
        raise UsageError(
            "No feature references were given, so name at least one as 'view:feature', "
            "e.g. 'customer_stats:monthly_spend'."
        )
    return tuple(out)


@dataclass(frozen=True)
class ViewInfo:
    """One feature view as the catalog sees it."""

    name: str
    features: tuple[str, ...]
    join_keys: tuple[str, ...]
    pii: frozenset[str]
    kind: str
    # join key -> Feast type name (INT64, STRING...), where the view declares it
    key_types: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Resolved:
    """Validated references of one request, with what every retrieval of them reuses."""

    refs: tuple[str, ...]
    views: tuple[str, ...]
    join_keys: tuple[str, ...]
    pii_refs: tuple[str, ...]
    # (feature, view, other view) when two views share a feature name, else None.
    collision: tuple[str, str, str] | None = None
    refs_list: list[str] = field(default_factory=list, compare=False)
    names: tuple[str, ...] = ()
    full_names: tuple[str, ...] = ()
    lineage: dict = field(default_factory=dict, compare=False)
    key_types: dict = field(default_factory=dict, compare=False)

    @classmethod
    def build(cls, refs, views, join_keys, pii_refs, collision=None, key_types=None) -> Resolved:
        return cls(
            refs,
            views,
            join_keys,
            pii_refs,
            collision,
            refs_list=list(refs),
            names=tuple(r.partition(":")[2] for r in refs),
            full_names=tuple(r.replace(":", "__", 1) for r in refs),
            lineage={
                "feature_refs": list(refs),
                "feature_views": list(views),
                "join_keys": list(join_keys),
                "pii_features": list(pii_refs),
            },
            key_types=dict(key_types or {}),
        )

    def check_names(self, full_feature_names: bool) -> None:
        """Short feature names must be unique unless full names are asked for."""
        if self.collision and not full_feature_names:
            feature, first, second = self.collision
            raise UsageError(
                f"Feature name {feature!r} comes from both {first!r} and {second!r}, so pass "
                "full_feature_names=True or request only one of them."
            )

    def output_names(self, full_feature_names: bool) -> tuple[str, ...]:
        """Column names Feast gives the features."""
        return self.full_names if full_feature_names else self.names


def _is_true(tags: dict | None, key: str = "pii") -> bool:
    return str((tags or {}).get(key, "")).strip().lower() in _TRUE


def view_info(view) -> ViewInfo:
    """A :class:`ViewInfo` of a Feast feature view of any kind."""
    features = tuple(f.name for f in view.features)
    flagged = {f.name for f in view.features if _is_true(getattr(f, "tags", None))}
    if not flagged and _is_true(getattr(view, "tags", None)):
        flagged = set(features)  # a PII view without field tags: every feature counts
    kind = type(view).__name__
    join_keys = (
        tuple(getattr(view, "join_keys", None) or ()) if kind != "OnDemandFeatureView" else ()
    )
    declared = {f.name: getattr(f.dtype, "name", str(f.dtype)) for f in _entity_columns(view)}
    key_types = tuple((k, declared[k]) for k in join_keys if k in declared)
    return ViewInfo(view.name, features, join_keys, frozenset(flagged), kind, key_types)


def _entity_columns(view) -> list:
    return list(getattr(view, "entity_columns", None) or ())


class FeatureCatalog:
    """View → features map of one Feast store, rebuilt at most every ``ttl`` seconds."""

    def __init__(
        self,
        list_views: Callable[[], list],
        refresh: Callable[[], None],
        repo: Path,
        ttl: float = 60.0,
    ):
        self._list_views = list_views
        self._refresh = refresh
        self.repo = repo
        self.ttl = ttl
        self._views: dict[str, ViewInfo] | None = None
        self._built = 0.0
        self._resolved: dict[object, Resolved] = {}
        self._lock = threading.Lock()

    def views(self) -> dict[str, ViewInfo]:
        views = self._views
        if views is None or time.monotonic() - self._built > self.ttl:
            views = self._rebuild()
        return views

    def _rebuild(self, refresh: bool = False) -> dict[str, ViewInfo]:
        with self._lock:
            if refresh:
                self._refresh()
            views = {v.name: view_info(v) for v in self._list_views()}
            self._views, self._built, self._resolved = views, time.monotonic(), {}
            return views

    def invalidate(self) -> None:
        """Forget the map; the next request re-reads the registry from storage."""
        self._rebuild(refresh=True)

    def resolve(self, refs) -> Resolved:
        """Check references (a list of ``view:feature`` or one comma-separated string)
        against the repo; the answer is cached per distinct ``refs`` until the map is rebuilt."""
        views = self.views()
        try:
            key = refs if isinstance(refs, str) else tuple(refs)
            hit = self._resolved.get(key)
        except TypeError:  # not iterable, or unhashable items: parse_refs explains
            key, hit = None, None
        if hit is not None:
            return hit
        parsed = parse_refs(refs)
        try:
            resolved = self._resolve(parsed, views)
        except NotFoundError:
            # Maybe someone applied new definitions since: look again once, then give up.
            resolved = self._resolve(parsed, self._rebuild(refresh=True))
        if key is not None and len(self._resolved) < 256:
            self._resolved[key] = resolved
        return resolved

    def _resolve(self, refs: tuple[str, ...], views: dict[str, ViewInfo]) -> Resolved:
        view_names: dict[str, None] = {}
        join_keys: dict[str, None] = {}
        key_types: dict[str, str] = {}
        pii: list[str] = []
        seen_names: dict[str, str] = {}
        collision = None
        for ref in refs:
            view_name, _, feature = ref.partition(":")
            info = views.get(view_name)
            if info is None:
                if not views:
                    raise NotFoundError(
                        f"The feature repository {self.repo} has no feature views, so run "
                        "`feast apply` in it (or the demo setup) before asking for features."
                    )
                raise NotFoundError(
                    f"There is no feature view {view_name!r} in {self.repo}, so use one of: "
                    f"{listing(views)}."
                )
            if feature not in info.features:
                raise NotFoundError(
                    f"Feature view {view_name!r} has no feature {feature!r}, so use one of: "
                    f"{listing(info.features)}."
                )
            if collision is None and seen_names.get(feature, view_name) != view_name:
                collision = (feature, seen_names[feature], view_name)
            seen_names.setdefault(feature, view_name)
            view_names[view_name] = None
            join_keys.update(dict.fromkeys(info.join_keys))
            key_types.update(info.key_types)
            if feature in info.pii:
                pii.append(ref)
        return Resolved.build(
            refs, tuple(view_names), tuple(join_keys), tuple(pii), collision, key_types
        )
