"""One SQLite ``timestamp`` converter that both Feast and IPython can live with.

``sqlite3.register_converter`` is process-wide. IPython's history registers one
for ISO-8601 text, Feast's SQLite online store one for Unix epoch integers;
whichever module is imported last breaks the other (Feast fails with "Invalid
isoformat string" when IPython started after Feast was imported). This converter
reads both forms.
"""

from __future__ import annotations

import datetime
import sqlite3


def convert_timestamp(value: bytes) -> datetime.datetime:
    text = value.decode()
    if text.lstrip("-").isdigit():
        return datetime.datetime.fromtimestamp(int(text))  # Feast stores epoch seconds
    return datetime.datetime.fromisoformat(text)  # IPython history stores ISO text


def install_timestamp_converter() -> None:
    """Register the converter (again); call after Feast or IPython may have replaced it."""
    sqlite3.register_converter("timestamp", convert_timestamp)
