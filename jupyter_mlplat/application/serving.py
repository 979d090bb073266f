"""Serving: deploy approved versions, canary, promote, rollback, undeploy, predict (issue 9).

A deploy serves only a version approved for its target, from its frozen copy after checking
its digest (:mod:`..serving.gate`). In the embedded mode each served version is a local
MLServer process (:mod:`..serving.supervisor`) started *before* the record changes, so a
model that fails to load leaves the deployment as it was and the caller gets its log; the
records (:mod:`..serving.deployments`) then say which versions take which share of the
traffic, and predictions are routed by that split.
"""

from __future__ import annotations

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
from .endpoints import Area, Context, endpoint

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

    @property
    def servers(self):
        return self.resources.servers

    # ---- helpers ----

    def _model_path(self, version: dict):
        from ..governance import frozen

        folder = frozen.require_intact(self.settings, version["digest"], version["approval_id"])
        return folder / frozen.MODEL_DIR

    def _prepare(self, row) -> None:
        """Start (or find running) a server for every version ``row`` will route to."""
        from ..serving.deployments import traffic

        for version, _ in traffic(row):
            self.servers.ensure(
                row.name, row.team, version["version"], version["digest"],
                self._model_path(version),
            )  # fmt: skip

    def _settle(self, name: str) -> None:
        """Stop the servers of ``name`` that no longer take traffic (after any outcome)."""
        from ..serving.deployments import traffic
        from ..store.models import Deployment

        with self.resources.store.session() as session:
            row = session.query(Deployment).filter_by(name=name).first()
            wanted = {v["version"] for v, _ in traffic(row)} if row is not None else set()
        self.servers.keep_only(name, wanted)

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
        for version, percent in traffic(row):
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
        for row in active(self.resources.store):
            for version, _ in traffic(row):
                try:
                    path = self._model_path(version)
                except MlplatError as exc:
                    logging.getLogger(__name__).error("Not serving %s: %s", row.name, exc)
                    continue
                wanted.append((row.name, row.team, version["version"], version["digest"], path))
        return self.servers.reconcile(wanted)

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
            self._settle(name)
        self._mirror(row)
        return self._describe(row)

    @endpoint("GET", "api/deployments", ListDeployments, ListDeploymentsResponse)
    def list_deployments(
        self, context: Context, request: ListDeployments
    ) -> ListDeploymentsResponse:
        """Deployments you may see (your teams', or every team's for reviewers), by id."""
        from ..serving.deployments import list_for

        rows = list_for(self.resources.store, context.identity, request.after(), request.limit + 1)
        items = [self._describe(row) for row in rows[: request.limit]]
        more = len(rows) > request.limit
        return ListDeploymentsResponse(
            items=items, next_cursor=str(rows[request.limit - 1].id) if more else None
        )

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

        row = deployments.get(self.resources.store, context.identity, request.name)
        if (request.records is None) == (request.columns is None):
            raise UsageError("Send the rows either as 'records' or as 'columns', not both.")
        frame = v2.frame_of(request.records if request.records is not None else request.columns)
        version = deployments.pick(row)
        body = self.infer(row, version, v2.infer_request(frame))
        return PredictResponse(
            deployment=row.name, version=version["version"], outputs=v2.outputs_of(body)
        )

    def v2(self, context: Context, name: str, method: str, rest: str, body: bytes) -> dict:
        """The Open Inference Protocol of deployment ``name`` under the platform service, for
        standard V2 clients: ``v2/models/<name>`` (metadata), ``…/ready``, ``…/infer`` and
        ``v2/health/ready|live``; routed by the traffic split like ``predict``."""
        import json

        import requests

        from ..errors import NotFoundError, UsageError
        from ..serving import deployments

        row = deployments.get(self.resources.store, context.identity, name)
        version = deployments.pick(row)
        parts = rest.strip("/").split("/")
        if parts[:1] == ["health"] and len(parts) == 2 and method == "GET":
            state = self._ready_server(row, version)
            return {"live": True} if parts[1] == "live" else {"ready": state.status == "ready"}
        if parts[:1] != ["models"] or len(parts) < 2 or len(parts) > 3:
            raise NotFoundError(f"There is no V2 route {rest!r}; see /v2/models/{name}.")
        if parts[1] != name:
            raise NotFoundError(f"Deployment {name} serves the model {name!r}, not {parts[1]!r}.")
        action = parts[2] if len(parts) == 3 else ""
        if action == "infer":
            if method != "POST":
                raise UsageError("V2 inference is a POST with a JSON body.")
            try:
                payload = json.loads(body or b"{}")
            except ValueError:
                raise UsageError("The V2 request body is not JSON.") from None
            return self.infer(row, version, payload)
        if method != "GET" or action not in ("", "ready"):
            raise NotFoundError(f"There is no V2 route {method} {rest!r}.")
        state = self._ready_server(row, version)
        url = f"{state.base_url}/v2/models/{state.model_name}" + (f"/{action}" if action else "")
        try:
            response = _http().get(url, timeout=PREDICT_TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            raise self._down(row, version, exc) from exc
        if action == "ready":
            return {"name": name, "ready": response.status_code == 200}
        if response.status_code != 200:
            raise self._down(row, version, f"HTTP {response.status_code}")
        return {**response.json(), "name": name}

    def infer(self, row, version: dict, payload: dict) -> dict:
        """POST a V2 ``payload`` to the server of ``version``; its JSON answer.

        The model's refusal of the data (MLServer answers 500 with MLflow's message while
        staying up) is a 400 carrying that message; a dead server is a 503 naming it."""
        import requests

        from ..errors import ServiceUnavailable, UsageError

        state = self._ready_server(row, version)
        url = f"{state.base_url}/v2/models/{state.model_name}/infer"
        try:
            response = _http().post(url, json=payload, timeout=PREDICT_TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            raise self._down(row, version, exc) from exc
        if response.status_code == 200:
            return response.json()
        after = self.servers.state(row.name, version["version"])
        if after is None or after.status != "ready":
            raise self._down(row, version, f"HTTP {response.status_code}")
        message = _error_text(response)
        if response.status_code >= 500 or response.status_code in (400, 422):
            raise UsageError(f"The model of {row.name} refused the data: {message}")
        raise ServiceUnavailable(
            f"The model server of {row.name} answered HTTP {response.status_code}: {message}"
        )

    def _ready_server(self, row, version: dict):
        state = self.servers.state(row.name, version["version"])
        if state is not None and state.status == "ready":
            return state
        if state is not None and state.status in ("crashed", "failed"):
            raise self._down(row, version, state.status)
        # Not started in this process yet (e.g. the platform service restarted): start it.
        return self.servers.ensure(
            row.name, row.team, version["version"], version["digest"],
            self._model_path(version),
        )  # fmt: skip

    def _down(self, row, version: dict, why) -> Exception:
        from ..errors import ServiceUnavailable

        state = self.servers.state(row.name, version["version"])
        tail = (state.log_tail if state else "").strip().splitlines()[-1:] or [""]
        return ServiceUnavailable(
            f"The model server of deployment {row.name} (version {version['version']}) is "
            f"down ({why}); redeploy it or roll back. Its log ends: {tail[0]}"
        )


def _error_text(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    text = body.get("error") or body.get("detail") or body
    return str(text)[:500]
