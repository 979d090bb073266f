"""The Open Inference Protocol (V2) as mlserver-mlflow speaks it: a DataFrame in, columns out.

A request with ``parameters.content_type = "pd"`` and one input per column is decoded by
MLServer's pandas codec into the DataFrame MLflow's pyfunc expects; the outputs come back
as named tensors.
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageError

_DATATYPES = (("b", "BOOL"), ("i", "INT64"), ("u", "INT64"), ("f", "FP64"))


def frame_of(data: Any):
    """``data`` (a DataFrame, a list of records, a dict of columns, or a 2-D list/array) as
    a DataFrame; UsageError for anything else."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, dict):
        frame = pd.DataFrame(data)
    elif isinstance(data, (list, tuple, np.ndarray)):
        frame = pd.DataFrame(list(data) if not isinstance(data, np.ndarray) else data)
    else:
        raise UsageError(
            f"Cannot send {type(data).__name__} to a model; give a DataFrame, a list of "
            "records, a dict of columns or a 2-D list."
        )
    if frame.empty:
        raise UsageError("The data has no rows; give at least one row to predict.")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def infer_request(frame) -> dict:
    """The V2 request body for ``frame`` (one input per column, pandas content type)."""
    inputs = []
    for column in frame.columns:
        values = frame[column]
        datatype = next((t for kind, t in _DATATYPES if values.dtype.kind == kind), "BYTES")
        data = values.astype(str).tolist() if datatype == "BYTES" else values.tolist()
        inputs.append({"name": column, "shape": [len(frame)], "datatype": datatype, "data": data})
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def outputs_of(body: dict) -> dict[str, list]:
    """The named outputs of a V2 response, each flattened to one value per row."""
    import numpy as np

    columns = {}
    for output in body.get("outputs") or []:
        values = np.asarray(output.get("data", []))
        shape = output.get("shape") or [len(values)]
        rows = int(shape[0]) if shape else len(values)
        values = values.reshape(rows, -1) if rows else values
        columns[output.get("name") or "predictions"] = (
            values.reshape(-1).tolist() if values.ndim == 1 or values.shape[1] == 1
            else values.tolist()
        )  # fmt: skip
    return columns
