"""Feature retrieval from a Feast repository: online, or point-in-time historical.

``get_features(["customer_stats:monthly_spend"], entities)`` returns a
:class:`FeatureResult`: the features as a DataFrame (entity columns first, rows in the
order of ``entities``, same index) and a lineage dict that tracking records on the run.

References are checked against a cached view → features map first (see
:mod:`.catalog`), so mistakes become one-sentence errors while a valid request costs
little more than Feast's own call. Feast and pandas are imported on first use only.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, ServiceUnavailable, UsageError
from .catalog import FeatureCatalog, Resolved, check_repo, listing

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

TIMESTAMP_COLUMN = "event_timestamp"
_KEY = "__mlplat_entity_key"


@dataclass
class FeatureResult:
    """Retrieved features (``df``) and where they came from (``lineage``)."""

    df: pd.DataFrame
    lineage: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        lin = self.lineage
        return (
            f"FeatureResult({lin.get('mode', '?')}: {lin.get('rows', len(self.df))} rows, "
            f"{len(lin.get('feature_refs', []))} features from "
            f"{', '.join(lin.get('feature_views', [])) or 'no views'})"
        )

    def _repr_html_(self) -> str | None:
        return self.df._repr_html_()


_DATAFRAME: type | None = None


def _dataframe_type() -> type:
    global _DATAFRAME
    if _DATAFRAME is None:
        import pandas as pd

        _DATAFRAME = pd.DataFrame
    return _DATAFRAME


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].rstrip(".") if text else type(exc).__name__


class FeatureRetriever:
    """Retrieves features from one Feast repository (the folder with feature_store.yaml)."""

    def __init__(self, repo_path: str | Path, *, catalog_ttl: float = 60.0):
        self.repo = check_repo(repo_path)
        self._repo_str = str(self.repo)
        self._store = None
        self._lock = threading.Lock()
        self.catalog = FeatureCatalog(
            self._list_views, self._refresh_registry, self.repo, ttl=catalog_ttl
        )

    # -- Feast objects -------------------------------------------------------------------
    @property
    def store(self):
        """The ``feast.FeatureStore`` of the repo, opened on first use."""
        store = self._store
        if store is None:
            with self._lock:
                if self._store is None:
                    self._store = self._open_store()
                store = self._store
        return store

    def _open_store(self):
        from feast import FeatureStore
        from feast.infra.online_stores import sqlite as _feast_sqlite  # noqa: F401

        from .sqlite_compat import install_timestamp_converter

        install_timestamp_converter()  # after Feast's own registration above
        try:
            return FeatureStore(repo_path=str(self.repo))
        except Exception as exc:  # bad YAML, unknown store type, missing plugin...
            raise ServiceUnavailable(
                f"Feast could not open the feature repository {self.repo} "
                f"({_first_line(exc)}), so fix its feature_store.yaml or point "
                "MLPLAT_FEATURE_REPO at a working repository."
            ) from exc

    @property
    def project(self) -> str:
        return self.store.project

    def _list_views(self) -> list:
        store = self.store
        return store.registry.list_all_feature_views(store.project, allow_cache=True)

    def _refresh_registry(self) -> None:
        self.store.refresh_registry()

    def views(self) -> dict[str, list[str]]:
        """Feature view name → its feature names."""
        return {name: list(info.features) for name, info in self.catalog.views().items()}

    def pii_features(self) -> list[str]:
        """``view:feature`` references flagged as personal data (tag ``pii=true``)."""
        return sorted(
            f"{name}:{feature}"
            for name, info in self.catalog.views().items()
            for feature in info.pii
        )

    # -- retrieval -----------------------------------------------------------------------
    def get(
        self,
        refs,
        entities,
        *,
        historical: bool = False,
        full_feature_names: bool = False,
    ) -> FeatureResult:
        """Features ``refs`` (``"view:feature"`` list or comma-separated string) for the
        rows of the DataFrame ``entities``; online (latest values) unless ``historical``,
        which joins point-in-time correct values as of each row's ``event_timestamp``."""
        resolved = self.catalog.resolve(refs)
        if resolved.collision:
            resolved.check_names(full_feature_names)
        self._check_entities(entities, resolved, historical)
        lineage: dict[str, Any] = {
            "mode": "historical" if historical else "online",
            **resolved.lineage,
            "rows": len(entities),
            "repo": self._repo_str,
            "project": self.store.project,
            "retrieved_at": datetime.now(timezone.utc).isoformat(),
        }
        if historical:
            df, first, last = self._historical(resolved, entities, full_feature_names)
            lineage["event_timestamp_min"] = first
            lineage["event_timestamp_max"] = last
        else:
            df = self._online(resolved, entities, full_feature_names)
        return FeatureResult(df, lineage)

    def _check_entities(self, entities, resolved: Resolved, historical: bool) -> None:
        # The cheap checks run on every call; messages are built only on failure.
        if not isinstance(entities, _dataframe_type()):
            self._entities_error(entities, resolved, historical)
        columns = entities.columns
        for key in resolved.join_keys:
            if key not in columns:
                self._entities_error(entities, resolved, historical)
        if historical and TIMESTAMP_COLUMN not in columns:
            self._entities_error(entities, resolved, historical)
        if not len(entities):
            self._entities_error(entities, resolved, historical)

    def _entities_error(self, entities, resolved: Resolved, historical: bool):
        if not isinstance(entities, _dataframe_type()):
            keys = ", ".join(resolved.join_keys) or "the join keys"
            raise UsageError(
                f"Entities must be a pandas DataFrame, not {type(entities).__name__}, so "
                f"build one with a column per join key ({keys})."
            )
        columns = entities.columns
        missing = [k for k in resolved.join_keys if k not in columns]
        if missing:
            raise UsageError(
                f"The entities DataFrame lacks the join key column(s) {', '.join(missing)} "
                f"needed by {', '.join(resolved.views)}, so add them (it has columns: "
                f"{listing(map(str, columns))})."
            )
        if historical and TIMESTAMP_COLUMN not in columns:
            raise UsageError(
                f"Historical retrieval needs an {TIMESTAMP_COLUMN!r} column in the entities "
                "DataFrame, so add one with the as-of time of each row or drop --historical."
            )
        raise UsageError(
            "The entities DataFrame has no rows, so pass at least one entity to look up."
        )

    def _online(self, resolved: Resolved, entities, full_feature_names: bool):
        import pandas as pd

        rows = {key: entities[key].tolist() for key in resolved.join_keys}
        try:
            response = self.store.get_online_features(
                features=resolved.refs_list,
                entity_rows=rows,
                full_feature_names=full_feature_names,
            )
        except Exception as exc:
            error = self._translate(exc)
            if error is exc:
                raise
            raise error from exc
        data = response.to_dict()
        columns = {
            col: data[col] if col in rows else entities[col].to_numpy() for col in entities.columns
        }
        for name in resolved.full_names if full_feature_names else resolved.names:
            columns[name] = data[name]
        return pd.DataFrame(columns, index=entities.index)

    def _historical(self, resolved: Resolved, entities, full_feature_names: bool):
        import pandas as pd

        try:
            stamps = pd.to_datetime(entities[TIMESTAMP_COLUMN], utc=True)
        except (TypeError, ValueError) as exc:
            raise UsageError(
                f"The {TIMESTAMP_COLUMN!r} column could not be read as timestamps "
                f"({_first_line(exc)}), so give datetimes or ISO 8601 strings."
            ) from exc
        if stamps.isna().any():
            raise UsageError(
                f"The {TIMESTAMP_COLUMN!r} column has missing values, so give every row "
                "the time its features should be read as of."
            )
        keys = list(resolved.join_keys)
        frame = entities[keys].copy()
        for key in keys:
            frame[key] = _as_key_type(frame[key], resolved.key_types.get(key))
        frame[TIMESTAMP_COLUMN] = stamps
        # Feast drops repeated (keys, timestamp) rows and rows older than all feature
        # data, so ask for each distinct row once and put the answers back in input order.
        codes = frame.groupby(keys + [TIMESTAMP_COLUMN], sort=False, dropna=False).ngroup()
        codes = codes.to_numpy()
        first = ~pd.Series(codes).duplicated().to_numpy()
        unique = frame.loc[first].reset_index(drop=True)
        unique[_KEY] = codes[first]
        try:
            job = self.store.get_historical_features(
                entity_df=unique,
                features=resolved.refs_list,
                full_feature_names=full_feature_names,
            )
            answer = job.to_df()
        except Exception as exc:
            error = self._translate(exc)
            if error is exc:
                raise
            raise error from exc
        names = list(resolved.output_names(full_feature_names))
        answer = answer.drop_duplicates(_KEY, keep="last").set_index(_KEY)[names]
        aligned = answer.reindex(codes)
        out = entities.copy()
        out[TIMESTAMP_COLUMN] = stamps
        for name in names:
            out[name] = aligned[name].to_numpy()
        return out, stamps.min().isoformat(), stamps.max().isoformat()

    def _translate(self, exc: Exception) -> Exception:
        """A user-facing error for a Feast failure we can explain, else ``exc`` itself."""
        import sqlite3

        from feast.errors import FeastObjectNotFoundException

        if isinstance(exc, FeastObjectNotFoundException):
            self.catalog.invalidate()
            return NotFoundError(
                f"Feast could not find part of the request in {self.repo} "
                f"({_first_line(exc)}), so check the references or re-run `feast apply`."
            )
        if isinstance(exc, (sqlite3.OperationalError, FileNotFoundError)):
            return ServiceUnavailable(
                f"The feature store data of {self.repo} could not be read "
                f"({_first_line(exc)}), so run the demo setup or `feast materialize` again."
            )
        return exc


_INT_TYPES = {"INT64": "int64", "INT32": "int32"}


def _as_key_type(column, feast_type: str | None):
    """Join key values in the entity's declared type: Feast's file store merges on the
    column as given, so float ids (common after a pandas merge) or digit strings would warn
    or fail. Only lossless conversions are made."""
    import pandas as pd

    target = _INT_TYPES.get(feast_type or "")
    if target is None or str(column.dtype) == target:
        return column
    if column.dtype != bool:
        numbers = pd.to_numeric(column, errors="coerce")
        if numbers.notna().all() and (numbers % 1 == 0).all():
            return numbers.astype(target)
    raise UsageError(
        f"The join key column {column.name!r} must hold whole numbers ({feast_type}), so "
        f"convert it, e.g. entities[{column.name!r}].astype('int64')."
    )


_RETRIEVERS: dict[str, FeatureRetriever] = {}
_RETRIEVERS_LOCK = threading.Lock()


def get_retriever(repo: str | Path) -> FeatureRetriever:
    """The cached retriever of the Feast repository ``repo`` (callers pass the settings'
    ``feature_repo``; this module reads no settings)."""
    if repo is None or not isinstance(repo, str | os.PathLike):
        raise TypeError(f"get_retriever needs the path of a Feast repository, got {repo!r}")
    key = os.fspath(repo)
    retriever = _RETRIEVERS.get(key)
    if retriever is not None:
        return retriever
    with _RETRIEVERS_LOCK:
        resolved = str(Path(key).expanduser().resolve())
        retriever = _RETRIEVERS.get(resolved)
        if retriever is None:
            retriever = FeatureRetriever(resolved)
            _RETRIEVERS[resolved] = retriever
        if os.path.isabs(key):  # relative keys would follow the working directory
            _RETRIEVERS[key] = retriever
    return retriever


def clear_retrievers() -> None:
    """Forget cached retrievers (tests, or after the repo moved)."""
    with _RETRIEVERS_LOCK:
        _RETRIEVERS.clear()


def get_features(
    refs,
    entities,
    *,
    repo: str | Path,
    historical: bool = False,
    full_feature_names: bool = False,
) -> FeatureResult:
    """Features for ``entities`` from the Feast repository ``repo`` (required: callers pass
    the settings' ``feature_repo``); see :meth:`FeatureRetriever.get`."""
    return get_retriever(repo).get(
        refs, entities, historical=historical, full_feature_names=full_feature_names
    )
