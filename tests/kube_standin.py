"""A local HTTP stand-in for the Kubernetes API (not a cluster, not a fake of KServe).

It answers just what ``jupyter_mlplat.serving.kube_api`` calls, on namespaced custom objects
(``/apis/<group>/<version>/namespaces/<ns>/<plural>/<name>``): server-side apply (PATCH
``application/apply-patch+yaml``; as for a single field manager, the applied labels,
annotations and spec replace the previous ones; a spec change is a new generation), GET and DELETE, with Kubernetes ``Status``
bodies for errors and a bearer token check (401). For InferenceServices it plays the
controller: a new generation reports ``Ready=Unknown`` until it has been read
``ready_after`` times (``None``: never), then ``Ready=True`` with ``observedGeneration``.
``batch/v1`` Jobs and CronJobs take the same paths; as the real API does, it refuses (422)
a change to a Job's pod template, which is immutable. Nothing runs their pods.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NOT_READY_MESSAGE = "Revision mlplat-predictor-00001 is waiting for the model to load"


class KubeStandIn:
    def __init__(
        self, token: str = "standin-token", ready_after: int | None = 2,
        address_url: str | None = None,
    ):  # fmt: skip
        self.token = token
        self.ready_after = ready_after
        # What a Ready InferenceService reports as status.address.url (the cluster-local
        # address the platform forwards predictions to): a test points it at a real MLServer.
        self.address_url = address_url
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.reads: dict[tuple[str, str, str], int] = {}
        self.requests: list[tuple[str, str, str]] = []  # (method, path, content type)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> KubeStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    # -- the object store ------------------------------------------------------------
    def apply(self, key, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        plural, namespace, name = key
        meta = body.get("metadata") or {}
        if meta.get("name") != name or meta.get("namespace", namespace) != namespace:
            return 400, _status(400, "BadRequest", "metadata.name/namespace do not match the URL")
        current = self.objects.get(key)
        if current is None:
            obj = {
                "apiVersion": body["apiVersion"],
                "kind": body["kind"],
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "uid": str(uuid.uuid4()),
                    "generation": 1,
                    "resourceVersion": "1",
                },  # fmt: skip
            }
            code = 201
        else:
            if plural == "jobs" and (body.get("spec") or {}).get("template") != (
                current.get("spec") or {}
            ).get("template"):
                message = f'Job.batch "{name}" is invalid: spec.template: field is immutable'
                return 422, _status(422, "Invalid", message)
            obj, code = current, 200
            changed = obj.get("spec") != body.get("spec")
            if changed:
                obj["metadata"]["generation"] += 1
            obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
        for field in ("labels", "annotations"):
            obj["metadata"].pop(field, None)
            if meta.get(field):
                obj["metadata"][field] = dict(meta[field])
        obj["spec"] = body.get("spec")
        if plural == "inferenceservices" and (current is None or changed):
            # A new generation is reconciled anew; an apply that changes nothing is not.
            self.reads[key] = 0
            self._report(obj, ready=False)
        self.objects[key] = obj
        return code, obj

    def read(self, key) -> dict[str, Any] | None:
        obj = self.objects.get(key)
        if obj is not None and key[0] == "inferenceservices":
            self.reads[key] += 1
            if self.ready_after is not None and self.reads[key] >= self.ready_after:
                self._report(obj, ready=True, address=self.address_url)
        return obj

    @staticmethod
    def _report(obj: dict[str, Any], ready: bool, address: str | None = None) -> None:
        condition = {"type": "Ready", "status": "True" if ready else "Unknown"}
        if not ready:
            condition |= {"reason": "RevisionMissing", "message": NOT_READY_MESSAGE}
        status = {"conditions": [condition]}
        if ready:
            status["observedGeneration"] = obj["metadata"]["generation"]
            status["url"] = f"http://{obj['metadata']['name']}.example.com"
            if address:
                status["address"] = {"url": address}
        obj["status"] = status


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
            "message": message, "code": code}  # fmt: skip


def _handler(standin: KubeStandIn):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _key(self):
            path = self.path.split("?", 1)[0].strip("/").split("/")
            # apis/<group>/<version>/namespaces/<ns>/<plural>/<name>
            if len(path) != 7 or path[0] != "apis" or path[3] != "namespaces":
                return None
            return (path[5], path[4], path[6])

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            content_type = self.headers.get("Content-Type", "")
            with standin.lock:
                standin.requests.append((method, self.path, content_type))
                if self.headers.get("Authorization") != f"Bearer {standin.token}":
                    return self._send(401, _status(401, "Unauthorized", "Unauthorized"))
                key = self._key()
                if key is None:
                    return self._send(404, _status(404, "NotFound", "the server could not "
                                                   "find the requested resource"))  # fmt: skip
                group = self.path.split("?", 1)[0].strip("/").split("/")[1]
                what = f'{key[0]}.{group} "{key[2]}"'
                if method == "PATCH":
                    if content_type != "application/apply-patch+yaml" or "fieldManager=" not in (
                        self.path
                    ):
                        return self._send(
                            415,
                            _status(
                                415, "UnsupportedMediaType", "the stand-in only implements apply"
                            ),
                        )
                    return self._send(*standin.apply(key, json.loads(raw)))
                obj = standin.read(key) if method == "GET" else standin.objects.get(key)
                if obj is None:
                    return self._send(404, _status(404, "NotFound", f"{what} not found"))
                if method == "DELETE":
                    del standin.objects[key]
                    return self._send(200, _status(200, "Success", "deleted") | {
                        "status": "Success"})  # fmt: skip
                return self._send(200, obj)

        def do_GET(self):
            self._handle("GET")

        def do_PATCH(self):
            self._handle("PATCH")

        def do_DELETE(self):
            self._handle("DELETE")

    return Handler
