"""A local HTTP stand-in of the Kubeflow Pipelines v2 API (``/apis/v2beta1``), for tests.

NOT a KFP cluster: it keeps experiments and runs in memory, records every request (path,
headers, body) and answers as the KFP API server does for the calls ``kfp.Client`` makes to
submit, read and terminate a run. A test moves a run's state (``finish``) as KFP would;
nothing runs. ``refuse`` makes it answer 401 to everything (a rejected token).
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PREFIX = "/apis/v2beta1"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class KfpStandIn:
    def __init__(self) -> None:
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.requests: list[dict] = []
        self.refusing = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def finish(self, run_id: str, state: str, tasks: list[tuple[str, str]]) -> None:
        """Move a run to ``state`` with tasks ``[(name, state)]``, as KFP would."""
        run = self.runs[run_id]
        run["state"] = state
        run["finished_at"] = _now()
        run["run_details"] = {"task_details": [
            {"task_id": uuid.uuid4().hex[:8], "display_name": name, "state": task_state,
             "start_time": run["created_at"], "end_time": _now()}
            for name, task_state in [("root", "SUCCEEDED"), *tasks]
        ]}  # fmt: skip

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                standin.requests.append({
                    "method": self.command, "path": self.path, "body": body,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                })  # fmt: skip
                return body or {}

            def do_GET(self):
                self._record()
                if standin.refusing:
                    return self._send(401, {"error": "no", "message": "Unauthorized"})
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                path = url.path.removeprefix(PREFIX)
                if path == "/healthz":
                    return self._send(200, {"multi_user": True})
                if path == "/experiments":
                    namespace = (query.get("namespace") or [""])[0]
                    wanted = None
                    if query.get("filter"):
                        predicates = json.loads(query["filter"][0]).get("predicates", [])
                        wanted = next(
                            (p.get("stringValue", p.get("string_value")) for p in predicates), None
                        )
                    found = [e for e in standin.experiments.values()
                             if e["namespace"] == namespace
                             and (wanted is None or e["display_name"] == wanted)]  # fmt: skip
                    return self._send(200, {"experiments": found, "total_size": len(found)})
                if path.startswith("/runs/"):
                    run = standin.runs.get(path.removeprefix("/runs/"))
                    if run is None:
                        return self._send(404, {"message": "run not found"})
                    return self._send(200, run)
                return self._send(404, {"message": f"no route {path}"})

            def do_POST(self):
                body = self._record()
                if standin.refusing:
                    return self._send(401, {"error": "no", "message": "Unauthorized"})
                path = urlsplit(self.path).path.removeprefix(PREFIX)
                if path == "/experiments":
                    experiment = {
                        "experiment_id": uuid.uuid4().hex, "display_name": body["display_name"],
                        "namespace": body.get("namespace", ""), "created_at": _now(),
                    }  # fmt: skip
                    standin.experiments[experiment["experiment_id"]] = experiment
                    return self._send(200, experiment)
                if path == "/runs":
                    if "pipeline_spec" not in body:
                        return self._send(400, {"message": "a run needs a pipeline spec"})
                    run = {
                        "run_id": uuid.uuid4().hex, "display_name": body.get("display_name"),
                        "experiment_id": body.get("experiment_id"), "state": "PENDING",
                        "pipeline_spec": body["pipeline_spec"],
                        "runtime_config": body.get("runtime_config", {}), "created_at": _now(),
                    }  # fmt: skip
                    standin.runs[run["run_id"]] = run
                    return self._send(200, run)
                if path.startswith("/runs/") and path.endswith(":terminate"):
                    run = standin.runs.get(path.removeprefix("/runs/").removesuffix(":terminate"))
                    if run is None:
                        return self._send(404, {"message": "run not found"})
                    run["state"] = "CANCELED"
                    return self._send(200, {})
                return self._send(404, {"message": f"no route {path}"})

        return Handler
