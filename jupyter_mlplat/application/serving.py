"""Serving: deploy approved versions, canary, promote, rollback, undeploy, predict (issue 9).

A deploy serves only a version approved for its target, from its frozen copy after checking
its digest (:mod:`..serving.gate`). In the embedded mode each served version is a local
MLServer process (:mod:`..serving.supervisor`) started *before* the record changes, so a
model that fails to load leaves the deployment as it was and the caller gets its log; the
records (:mod:`..serving.deployments`) then say which versions take which share of the
traffic, and predictions are routed by that split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..api.serving import (
    CreateDeployment,
    DescribeDeployment,
    DescribeDeploymentByName,
    DescribeServedVersion,
    ListDeployments,
    ListDeploymentsResponse,
    Predict,
    PredictResponse,
)
from .endpoints import Area, Context, endpoint, page_of

PREDICT_TIMEOUT_SECONDS = 60
_SESSIONS = __import__("threading").local()


def _http():
    """This thread's HTTP session to the model servers: kept-alive connections (a new TCP
    connection per prediction cost a third of the service's time under load)."""
    import requests

    session = getattr(_SESSIONS, "session", None)
    if session is None:
        session = _SESSIONS.session = requests.Session()
        session.trust_env = False  # loopback only: no proxy from the environment
    return session


class ServingArea(Area):
    name = "serving"

    def __init__(self, settings, resources) -> None:
        super().__init__(settings, resources)
        # name -> (monotonic expiry, record): V2 calls and predictions read no database row
        # per request; a change made here drops the name at once, others' within the bound.
        self._rows: dict[str, tuple[float, Any]] = {}
        self._routes: dict[str, tuple[float, str]] = {}  # name -> (expiry, ISVC address)
        self._aio: dict = {}  # event loop -> aiohttp session

    @property
    def servers(self):
        return self.resources.servers

    # ---- helpers ----

    def _model_path(self, version: dict):
        from ..governance import frozen

        folder = frozen.require_intact(self.settings, version["digest"], version["approval_id"])
        return folder / frozen.MODEL_DIR

    @property
    def kube(self):
        """The Kubernetes deployer (kubernetes mode), else None: local model servers."""
        return self.resources.kube

    def _prepare(self, row) -> None:
        """Serve every version ``row`` will route to: start (or find running) its local
        server, or apply its InferenceService and wait for Ready."""
        from ..serving.deployments import traffic

        paths = [(version, self._model_path(version)) for version, _ in traffic(row)]
        if self.kube is not None:
            from ..serving.publish import publish

            # The copies just checked intact are the ones the cluster will fetch.
            for version, path in paths:
                publish(self.settings.serving_storage_uri, version["digest"], path.parent)
            self.kube.apply(row, wait=True)
            return
        for version, path in paths:
            self.servers.ensure(row.name, row.team, version["version"], version["digest"], path)

    def _settle(self, name: str, team: str | None = None) -> None:
        """Make serving match the record of ``name`` after any outcome: stop the local
        servers that no longer take traffic, or re-apply (delete) its InferenceService."""
        from ..serving.deployments import ACTIVE, traffic
        from ..store.models import Deployment

        self._forget(name)
        with self.resources.store.session() as session:
            row = session.query(Deployment).filter_by(name=name).first()
            if row is not None:
                session.expunge(row)
        if self.kube is None:
            wanted = {v["version"] for v, _ in traffic(row)} if row is not None else set()
            self.servers.keep_only(name, wanted)
        elif row is not None and row.status == ACTIVE:
            self.kube.apply(row, wait=False)
        elif row is not None or team is not None:
            self.kube.remove(row or Deployment(name=name, team=team))

    def _mirror(self, row) -> None:
        """Best effort: the registry shows what is deployed (the store is the record)."""
        import logging

        from ..governance.registry import mirror_deployment
        from ..serving.deployments import traffic

        shares = {v["version"]: 0 for v in (row.previous, row.primary, row.canary) if v}
        shares.update({v["version"]: percent for v, percent in traffic(row)})
        try:
            mirror_deployment(self.settings, row.model, row.target, shares)
        except Exception:  # noqa: BLE001 - MLflow is a copy; the deployment stands
            logging.getLogger(__name__).warning(
                "Could not mirror deployment %s to MLflow", row.name, exc_info=True
            )

    def _describe(self, row) -> DescribeDeployment:
        from ..serving.deployments import traffic

        served = []
        cluster = self.kube.served(row) if self.kube is not None and traffic(row) else None
        for version, percent in traffic(row):
            if cluster is not None:  # KServe routes: one object's state for both versions
                state = _Shown(cluster.status, cluster.message)
            else:
                state = self.servers.state(row.name, version["version"])
            served.append(
                DescribeServedVersion(
                    version=version["version"],
                    percent=percent,
                    approval_id=version["approval_id"],
                    digest=version["digest"],
                    run_id=version["run_id"],
                    server=state.status if state else "not started",
                    log_tail=state.log_tail if state and state.status != "ready" else "",
                    restarts=getattr(state, "restarts", 0),
                )  # fmt: skip
            )
        return DescribeDeployment(
            name=row.name, model=row.model, target=row.target, team=row.team,
            status=row.status, traffic=served,
            previous_version=(row.previous or {}).get("version"),
            endpoint=f"api/deployments/{row.name}/v2/models/{row.name}",
            provenance=self._provenance(row), created_by=row.created_by,
            updated_at=row.updated_at,
        )  # fmt: skip

    def _provenance(self, row) -> dict:
        """approval → version → digest → run → notebook hash → feature references."""
        from ..store.models import ApprovalRequest

        primary = row.primary or {}
        facts = {
            "approval_id": primary.get("approval_id"), "version": primary.get("version"),
            "digest": primary.get("digest"), "run_id": primary.get("run_id"),
        }  # fmt: skip
        with self.resources.store.session() as session:
            request = session.get(ApprovalRequest, primary.get("approval_id") or 0)
            checks = request.checks if request is not None else []
            lineage = next((c.inputs for c in checks if c.name == "lineage_complete"), {})
        facts["notebook_hash"] = (lineage or {}).get("notebook_hash", "")
        facts["feature_refs"] = (lineage or {}).get("feature_refs", [])
        return facts

    def reconcile(self) -> list:
        """Serve every recorded active deployment (at service start, and periodically): a
        restart of the platform brings them back; a version whose frozen copy changed is
        not served (logged), never the changed files."""
        import logging

        from ..errors import MlplatError
        from ..serving.deployments import active, traffic

        wanted = []
        if self.kube is not None:
            for row in active(self.resources.store):
                try:
                    self._prepare_quietly(row)
                except MlplatError as exc:
                    logging.getLogger(__name__).error("Not serving %s: %s", row.name, exc)
            return []
        for row in active(self.resources.store):
            for version, _ in traffic(row):
                try:
                    path = self._model_path(version)
                except MlplatError as exc:
                    logging.getLogger(__name__).error("Not serving %s: %s", row.name, exc)
                    continue
                wanted.append((row.name, row.team, version["version"], version["digest"], path))
        return self.servers.reconcile(wanted)

    def supervise(self) -> list[tuple[str, str, str]]:
        """One round of supervision of the local model servers (the service runs it every
        ``serving_supervise_seconds``): each recorded version's server that died or lost its
        model is restarted from its served copy, after its frozen copy's digest is checked
        again. ``(deployment, version, outcome)`` of each server that needed something.
        On Kubernetes, KServe supervises its pods: nothing to do."""
        from ..serving.deployments import active, traffic

        if self.kube is not None:
            return []
        done = []
        for row in active(self.resources.store):
            for version, _ in traffic(row):
                outcome = self.servers.supervise(
                    row.name, row.team, version["version"], version["digest"],
                    lambda v=version: self._model_path(v), self.settings.serving_max_restarts,
                )  # fmt: skip
                if outcome not in ("ok", "skipped"):
                    done.append((row.name, version["version"], outcome))
        return done

    def _prepare_quietly(self, row) -> None:
        from ..serving.deployments import traffic

        for version, _ in traffic(row):
            self._model_path(version)  # a changed frozen copy is not applied
        self.kube.apply(row, wait=False)

    # ---- endpoints ----

    @endpoint("POST", "api/deployments", CreateDeployment, DescribeDeployment, status=201)
    def deploy(self, context: Context, request: CreateDeployment) -> DescribeDeployment:
        """Serve an approved version: all traffic, or ``canary`` percent next to the current."""
        from ..serving import deployments, gate

        store = self.resources.store
        name = deployments.deployment_name(request.model, request.target)  # a valid name first
        servable = gate.servable(
            store, self.settings, context.identity, request.model, request.version,
            request.target,
        )  # fmt: skip
        try:
            row = deployments.deploy(
                store, context.identity, servable, request.canary, prepare=self._prepare
            )
        finally:
            self._settle(name, servable.team)
        self._mirror(row)
        return self._describe(row)

    @endpoint("GET", "api/deployments", ListDeployments, ListDeploymentsResponse)
    def list_deployments(
        self, context: Context, request: ListDeployments
    ) -> ListDeploymentsResponse:
        """Deployments you may see (your teams', or every team's for reviewers), by id."""
        from ..serving.deployments import list_for

        rows = list_for(self.resources.store, context.identity, request.after(), request.limit + 1)
        return page_of(rows, request.limit, self._describe, ListDeploymentsResponse)

    @endpoint("GET", "api/deployments/{name}", DescribeDeploymentByName, DescribeDeployment)
    def show_deployment(
        self, context: Context, request: DescribeDeploymentByName
    ) -> DescribeDeployment:
        from ..serving.deployments import get

        return self._describe(get(self.resources.store, context.identity, request.name))

    @endpoint(
        "POST", "api/deployments/{name}/promote", DescribeDeploymentByName, DescribeDeployment
    )
    def promote(self, context: Context, request: DescribeDeploymentByName) -> DescribeDeployment:
        """The canary takes all the traffic."""
        from ..serving import deployments

        try:
            row = deployments.promote(self.resources.store, context.identity, request.name)
        finally:
            self._settle(request.name)
        self._mirror(row)
        return self._describe(row)

    @endpoint(
        "POST", "api/deployments/{name}/rollback", DescribeDeploymentByName, DescribeDeployment
    )
    def rollback(self, context: Context, request: DescribeDeploymentByName) -> DescribeDeployment:
        """Drop the canary; without one, serve the previous version again."""
        from ..serving import deployments

        try:
            row = deployments.rollback(
                self.resources.store, context.identity, request.name, prepare=self._prepare
            )
        finally:
            self._settle(request.name)
        self._mirror(row)
        return self._describe(row)

    @endpoint(
        "POST", "api/deployments/{name}/undeploy", DescribeDeploymentByName, DescribeDeployment
    )
    def undeploy(self, context: Context, request: DescribeDeploymentByName) -> DescribeDeployment:
        """Stop serving (the record stays, marked undeployed)."""
        from ..serving import deployments

        try:
            row = deployments.undeploy(self.resources.store, context.identity, request.name)
        finally:
            self._settle(request.name)
        self._mirror(row)
        return self._describe(row)

    @endpoint("POST", "api/deployments/{name}/predict", Predict, PredictResponse)
    def predict(self, context: Context, request: Predict) -> PredictResponse:
        """Send rows to the deployment (routed by its traffic split); the model's outputs."""
        from ..errors import UsageError
        from ..serving import deployments, v2

        row = self._row(context, request.name)
        if (request.records is None) == (request.columns is None):
            raise UsageError("Send the rows either as 'records' or as 'columns', not both.")
        frame = v2.frame_of(request.records if request.records is not None else request.columns)
        version = deployments.pick(row)
        body = self.infer(row, version, v2.infer_request(frame))
        # On Kubernetes KServe splits the traffic: the answer names the version (the
        # InferenceService sets MLSERVER_MODEL_VERSION).
        answered = str(body.get("model_version") or version["version"])
        return PredictResponse(deployment=row.name, version=answered, outputs=v2.outputs_of(body))

    # ---- the Open Inference Protocol (V2) under the platform service ----

    def v2_route(
        self, context: Context, name: str, method: str, rest: str, *, may_block: bool = True
    ) -> V2Call:
        """Where a standard V2 client's call to deployment ``name`` goes: ``v2/models/<name>``
        (metadata), ``…/ready``, ``…/infer`` and ``v2/health/ready|live``, routed by the
        traffic split like ``predict``. With ``may_block`` False it answers from what this
        process already knows, or raises :class:`WouldBlock` (run it again in a thread)."""
        from ..errors import NotFoundError, UsageError
        from ..serving import deployments

        row = self._row(context, name, may_block)
        version = deployments.pick(row)
        parts = rest.strip("/").split("/")
        if parts[:1] == ["health"] and len(parts) == 2 and method == "GET":
            self._target(row, version, may_block)  # a dead server is a 503 naming it
            answer = {"live": True} if parts[1] == "live" else {"ready": True}
            return V2Call(row, version, method, None, "health", answer)
        if parts[:1] != ["models"] or len(parts) < 2 or len(parts) > 3:
            raise NotFoundError(f"There is no V2 route {rest!r}; see /v2/models/{name}.")
        if parts[1] != name:
            raise NotFoundError(f"Deployment {name} serves the model {name!r}, not {parts[1]!r}.")
        action = parts[2] if len(parts) == 3 else "metadata"
        if action == "infer" and method != "POST":
            raise UsageError("V2 inference is a POST with a JSON body.")
        if action != "infer" and (method != "GET" or action not in ("metadata", "ready")):
            raise NotFoundError(f"There is no V2 route {method} {rest!r}.")
        target = self._target(row, version, may_block)
        suffix = "" if action == "metadata" else f"/{action}"
        path = f"/v2/models/{target.model}{suffix}"
        return V2Call(row, version, method, target.base + path, action, socket=target.socket)

    async def v2_forward(self, call: V2Call, body: bytes) -> bytes:
        """Send ``call`` to its model server from the event loop (kept-alive connections);
        the JSON bytes to answer. The request and answer bodies of ``infer`` pass through
        unparsed: the model server checks them, and its refusal is mapped as for predict."""
        import asyncio
        import json

        import aiohttp

        if call.answer is not None:
            return json.dumps(call.answer).encode()
        session = await self._aio_session(call.socket)
        headers = {"Content-Type": "application/json"} if call.method == "POST" else None
        try:
            async with session.request(
                call.method, call.url, data=body if call.method == "POST" else None,
                headers=headers,
            ) as response:  # fmt: skip
                status, data = response.status, await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise self._down(call.row, call.version, exc or type(exc).__name__) from exc
        if call.action == "ready":
            return json.dumps({"name": call.row.name, "ready": status == 200}).encode()
        if status != 200:
            raise self._refused(call.row, call.version, status, data)
        if call.action == "metadata":
            return json.dumps({**json.loads(data), "name": call.row.name}).encode()
        return data

    async def _aio_session(self, socket: str | None):
        """The event loop's aiohttp session to a model server's Unix ``socket`` (one per
        socket: a connector has one path), or over TCP (None), made on first use."""
        import asyncio

        import aiohttp

        key = (asyncio.get_running_loop(), socket)
        session = self._aio.get(key)
        if session is None or session.closed:
            if socket is None:
                connector = aiohttp.TCPConnector(limit=256, limit_per_host=64)
            else:
                connector = aiohttp.UnixConnector(path=socket, limit=64)
            session = self._aio[key] = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=PREDICT_TIMEOUT_SECONDS),
                trust_env=False,  # no proxy from the environment: model servers are direct
            )
        return session

    async def aclose(self) -> None:
        """Close the event loop's HTTP sessions (service shutdown)."""
        import asyncio

        loop = asyncio.get_running_loop()
        for key in [k for k in self._aio if k[0] is loop]:
            await self._aio.pop(key).close()

    def infer(self, row, version: dict, payload: dict) -> dict:
        """POST a V2 ``payload`` to the server of ``version``; its JSON answer (predict's
        path, from a thread)."""
        import http.client
        import json

        import requests

        from ..serving import unix_http

        target = self._target(row, version)
        path = f"/v2/models/{target.model}/infer"
        body = json.dumps(payload).encode()
        try:
            if target.socket is not None:
                status, data = unix_http.fetch(
                    target.socket, "POST", path, body, {"Content-Type": "application/json"},
                    timeout=PREDICT_TIMEOUT_SECONDS,
                )  # fmt: skip
            else:
                response = _http().post(
                    target.base + path, data=body, timeout=PREDICT_TIMEOUT_SECONDS,
                    headers={"Content-Type": "application/json"},
                )  # fmt: skip
                status, data = response.status_code, response.content
        except (requests.RequestException, OSError, http.client.HTTPException) as exc:
            raise self._down(row, version, exc) from exc
        if status != 200:
            raise self._refused(row, version, status, data)
        return json.loads(data)

    def _refused(self, row, version: dict, status: int, data: bytes) -> Exception:
        """The error for a model server's non-200 answer. The model's refusal of the data
        (MLServer answers 500 with MLflow's message while staying up, 400/422 for a bad
        request) is a 400 carrying that message; a server that went down is a 503."""
        from ..errors import ServiceUnavailable, UsageError

        if self.kube is None:
            after = self.servers.state(row.name, version["version"])
            down = after is None or after.status != "ready"
        else:  # Knative's activator or queue-proxy answers these when no pod can
            down = status in (502, 503, 504)
        if down:
            return self._down(row, version, f"HTTP {status}")
        message = _error_text(data)
        if status >= 500 or status in (400, 422):
            return UsageError(f"The model of {row.name} refused the data: {message}")
        return ServiceUnavailable(
            f"The model server of {row.name} answered HTTP {status}: {message}"
        )

    def _row(self, context: Context, name: str, may_block: bool = True):
        """The record of deployment ``name`` if the caller may see it, at most
        ``serving_route_cache_seconds`` old (this process's own changes drop it at once)."""
        import time

        from ..serving import deployments

        now = time.monotonic()
        hit = self._rows.get(name)
        if hit is not None and hit[0] > now:
            row = hit[1]
        elif not may_block:
            raise WouldBlock(name)
        else:
            row = deployments.find(self.resources.store, name)
            ttl = self.settings.serving_route_cache_seconds
            if ttl > 0:
                if len(self._rows) > 10_000:
                    self._rows.clear()
                self._rows[name] = (now + ttl, row)
        deployments.check_can_see(context.identity, row)
        return row

    def _forget(self, name: str) -> None:
        self._rows.pop(name, None)
        self._routes.pop(name, None)

    def _target(self, row, version: dict, may_block: bool = True) -> _Target:
        """The server that answers for ``version`` of ``row``: its ready local server
        (started here if this process has not yet), on its Unix socket, or the
        InferenceService's address; a dead or unready one is a 503 naming the deployment."""
        import time

        from ..errors import ServiceUnavailable

        if self.kube is not None:
            now = time.monotonic()
            hit = self._routes.get(row.name)
            if hit is not None and hit[0] > now:
                return _Target(None, hit[1], row.name)
            if not may_block:
                raise WouldBlock(row.name)
            served = self.kube.served(row)
            if served.status != "ready" or not served.url:
                raise ServiceUnavailable(
                    f"The InferenceService of deployment {row.name} is {served.status}"
                    + (f" ({served.message})" if served.message else "")
                    + "; wait for it, or see `%mlplat deployments`."
                )
            self._routes[row.name] = (now + self.settings.serving_route_cache_seconds, served.url)
            return _Target(None, served.url, row.name)
        ready = self.servers.endpoint(row.name, version["version"])
        if ready is not None:
            return _Target(ready[0], ready[1], row.name)
        state = self.servers.state(row.name, version["version"])
        if state is not None and state.status in ("crashed", "failed"):
            raise self._down(row, version, state.status)
        if not may_block:
            raise WouldBlock(row.name)
        # Not started in this process yet (e.g. the platform service restarted): start it.
        state = self.servers.ensure(
            row.name, row.team, version["version"], version["digest"],
            self._model_path(version),
        )  # fmt: skip
        return _Target(state.socket, state.base_url, state.model_name)

    def _down(self, row, version: dict, why) -> Exception:
        from ..errors import ServiceUnavailable

        if self.kube is not None:
            return ServiceUnavailable(
                f"The InferenceService of deployment {row.name} did not answer ({why}); see "
                "`%mlplat deployments` for its state."
            )
        state = self.servers.state(row.name, version["version"])
        tail = (state.log_tail if state else "").strip().splitlines()[-1:] or [""]
        return ServiceUnavailable(
            f"The model server of deployment {row.name} (version {version['version']}) is "
            f"down ({why}); redeploy it or roll back. Its log ends: {tail[0]}"
        )


class WouldBlock(Exception):
    """The event loop's fast path of a V2 call would need the database, the Kubernetes API
    or a model server start: run it again in a thread."""


@dataclass(frozen=True)
class V2Call:
    """Where one V2 call goes (``url``), or its ``answer`` when nothing is forwarded."""

    row: Any
    version: dict
    method: str
    url: str | None
    action: str  # infer | metadata | ready | health
    answer: dict | None = None
    socket: str | None = None  # the local model server's Unix socket (url's host unused)


@dataclass(frozen=True)
class _Target:
    socket: str | None
    base: str
    model: str


@dataclass(frozen=True)
class _Shown:
    status: str
    log_tail: str


def _error_text(data: bytes) -> str:
    import json

    try:
        body = json.loads(data)
    except ValueError:
        return data[:500].decode("utf-8", "replace")
    if not isinstance(body, dict):
        return str(body)[:500]
    text = body.get("error") or body.get("detail") or body
    return str(text)[:500]
