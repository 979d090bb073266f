"""Writing audit events out as JSON lines or CSV (no database needed: the CLI and the
fluent API write what the client reads page by page)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from ..errors import UsageError
from ..times import iso as iso

FIELDS = ("seq", "time", "actor", "action", "subject", "before", "after", "reason", "prev_hash")
EXPORT_COLUMNS = (*FIELDS, "hash")
JSON_FIELDS = ("before", "after")


def write_records(records: Iterable[dict[str, Any]], fmt: str, out: IO[str] | str | Path) -> int:
    """Write event records (dicts of the export columns) as ``jsonl`` or ``csv`` to ``out``
    (a text stream or a path); ``before``/``after`` are JSON text in CSV. Returns the count."""
    if fmt not in ("jsonl", "csv"):
        raise UsageError(f"{fmt!r} is not an audit export format; use jsonl or csv.")
    if isinstance(out, str | Path):
        with open(out, "w", encoding="utf-8", newline="") as stream:
            return write_records(records, fmt, stream)
    count = 0
    writer = None
    for record in records:
        if fmt == "jsonl":
            out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        else:
            if writer is None:
                writer = csv.writer(out)
                writer.writerow(EXPORT_COLUMNS)
            record = dict(record)
            for key in JSON_FIELDS:
                record[key] = json.dumps(record[key], ensure_ascii=False, sort_keys=True)
            writer.writerow([record[c] for c in EXPORT_COLUMNS])
        count += 1
    if fmt == "csv" and writer is None:
        csv.writer(out).writerow(EXPORT_COLUMNS)
    return count
