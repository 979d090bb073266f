/**
 * The data layer: typed calls of the platform's REST API as the Jupyter server
 * serves it under `<baseUrl>mlplat/`.
 *
 * Kept free of @jupyterlab imports so jest can test it in plain node: the plugin
 * passes in a `request` function built on ServerConnection (auth, XSRF header).
 * The types mirror the pydantic models of jupyter_mlplat/api/*.py.
 */

/** Sends one HTTP request to `<baseUrl>mlplat/<path>` (path includes any query). */
export type RequestFn = (path: string, init: RequestInit) => Promise<Response>;

export type Query = Record<string, string | number | boolean | null | undefined>;

/** A page of a list: its items and, when there are more, the next page's cursor. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface PageRequest {
  cursor?: string | null;
  limit?: number;
}

/** An error the panel shows as it is: one sentence saying what was wrong. */
export class MlplatError extends Error {
  readonly code: string;
  /** The HTTP status; 0 when the server could not be reached. */
  readonly status: number;

  constructor(message: string, code: string, status: number) {
    super(message);
    this.name = 'MlplatError';
    this.code = code;
    this.status = status;
  }
}

/** The sentence to show for any thrown value. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

// ---- what the API answers (the Describe* models) ----

export interface DescribeMe {
  user: string;
  kind: string;
  teams: string[];
  roles: string[];
  source: string;
}

/** `GET mlplat/api/status`: what `%mlplat status` says (jupyter_mlplat.fluent.Status). */
export interface DescribeStatus {
  user: string;
  teams: string[];
  teams_source: string;
  mode: string;
  tracking_uri: string;
  tracking_reachable: boolean | null;
  feature_repo: string;
  feature_repo_ready: boolean;
  experiment: string | null;
  active_run: string | null;
  last_run: string | null;
  data_dir: string;
  problems: string[];
}

export interface DescribeExperiment {
  experiment_id: string;
  name: string;
  team: string;
  mlflow_url: string;
}

export interface DescribeRunSummary {
  run_id: string;
  name: string;
  experiment_id: string;
  experiment: string;
  team: string;
  status: string;
  user: string;
  start_time: string | null;
  end_time: string | null;
  params: Record<string, string>;
  metrics: Record<string, number>;
  notebook_path: string;
  mlflow_url: string;
}

export interface MetricPoint {
  step: number;
  value: number;
  timestamp: number;
}

export interface DescribeRun extends DescribeRunSummary {
  histories: Record<string, MetricPoint[]>;
  tags: Record<string, string>;
  has_notebook: boolean;
}

export interface DescribeRunNotebook {
  run_id: string;
  path: string;
  sha256: string;
  content: NotebookContent;
}

/** An nbformat notebook as JSON; the panel only saves it, never reads it. */
export type NotebookContent = Record<string, unknown>;

export interface DescribeCheck {
  name: string;
  passed: boolean;
  inputs: Record<string, unknown>;
  message: string;
}

export interface DescribeDecision {
  reviewer: string;
  verdict: string;
  comment: string;
  run_id: string;
  artifact_digest: string;
  frozen_digest: string;
  decided_at: string;
  overrides: string[];
}

export interface DescribeApprovalRequest {
  id: number;
  model: string;
  version: string;
  target: string;
  status: string;
  requester: string;
  requester_team: string;
  run_id: string;
  artifact_digest: string;
  frozen_digest: string;
  reason: string;
  metrics: Record<string, unknown>;
  high_risk: boolean;
  approvals_required: number;
  approvals: number;
  checks_passed: boolean;
  created_at: string;
  updated_at: string;
  checks: DescribeCheck[];
  decisions: DescribeDecision[];
}

export interface DescribeModelVersionState {
  model: string;
  version: string;
  team: string;
  run_id: string;
  high_risk: boolean;
  created_at: string | null;
  /** The newest request's status, or "unrequested". */
  state: string;
  /** Newest first. */
  requests: DescribeApprovalRequest[];
  mlflow_url: string;
}

export interface DescribeAuditEvent {
  seq: number;
  time: string;
  actor: string;
  action: string;
  subject: string;
  before: unknown;
  after: unknown;
  reason: string;
  prev_hash: string;
  hash: string;
}

export interface DescribeServedVersion {
  version: string;
  percent: number;
  approval_id: number;
  digest: string;
  run_id: string;
  /** ready | starting | failed | crashed | stopped | not started */
  server: string;
  log_tail: string;
  restarts: number;
}

export interface DescribeDeployment {
  name: string;
  model: string;
  target: string;
  team: string;
  /** active | undeployed */
  status: string;
  traffic: DescribeServedVersion[];
  previous_version: string | null;
  endpoint: string;
  provenance: Record<string, unknown>;
  created_by: string;
  updated_at: string;
}

export interface PredictResponse {
  deployment: string;
  version: string;
  outputs: Record<string, unknown[]>;
}

export type JobStatus =
  'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'interrupted' | 'skipped';

export const JOB_STATUSES: JobStatus[] = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'cancelled',
  'interrupted',
  'skipped'
];

/** Statuses after which a run changes no more. */
export const FINAL_JOB_STATUSES: ReadonlySet<string> = new Set([
  'succeeded',
  'failed',
  'cancelled',
  'interrupted',
  'skipped'
]);

/** The first cell with an error output (jupyter_mlplat.jobs.notebooks.failing_cell). */
export interface FailedCell {
  index?: number;
  cell_id?: string | null;
  execution_count?: number | null;
  source?: string;
  ename?: string;
  evalue?: string;
}

export interface DescribeJob {
  id: number;
  status: JobStatus;
  reason: string;
  owner: string;
  team: string;
  notebook_path: string;
  snapshot_digest: string;
  parameters: Record<string, unknown>;
  profile: string;
  schedule_id: number | null;
  fire_time: string | null;
  cells_done: number;
  cells_total: number;
  failed_cell: FailedCell | null;
  mlflow_run_id: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface DescribeJobLogs {
  run_id: number;
  text: string;
  truncated: boolean;
}

export interface DescribeJobNotebook {
  run_id: number;
  notebook: NotebookContent | null;
}

export interface DescribeSchedule {
  id: number;
  name: string;
  owner: string;
  team: string;
  notebook_path: string;
  snapshot_digest: string;
  parameters: Record<string, unknown>;
  profile: string;
  cron: string;
  timezone: string;
  missed: string;
  paused: boolean;
  next_fire_at: string | null;
  created_at: string;
}

export interface PipelineTask {
  name: string;
  state: 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';
  /** Epoch seconds. */
  started: number | null;
  ended: number | null;
  outputs: Record<string, unknown>;
  mlflow_run_id: string;
  /** An executed notebook is kept for this task. */
  notebook: boolean;
}

export interface DescribePipelineRun {
  id: number;
  name: string;
  status: JobStatus;
  reason: string;
  owner: string;
  team: string;
  mode: string;
  experiment: string;
  arguments: Record<string, unknown>;
  pipeline_digest: string;
  kfp_run_id: string;
  mlflow_run_id: string;
  tasks: PipelineTask[];
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface DescribePipelineLogs {
  run_id: number;
  task: string | null;
  text: string;
  truncated: boolean;
}

export interface DescribePipelineTaskNotebook {
  run_id: number;
  task: string;
  notebook: NotebookContent | null;
}

// ---- what the API takes ----

export interface ListRunsRequest extends PageRequest {
  experiment_id?: string | null;
  /** MLflow search syntax, e.g. "metrics.auc > 0.8". */
  filter?: string;
  /** e.g. "metrics.auc DESC". */
  order?: string;
}

export interface ListModelVersionsRequest extends PageRequest {
  model?: string | null;
}

export interface ListApprovalsRequest extends PageRequest {
  pending?: boolean;
  model?: string | null;
}

export interface ListJobsRequest extends PageRequest {
  status?: JobStatus | '' | null;
  schedule_id?: number | null;
}

export interface ListPipelinesRequest extends PageRequest {
  status?: JobStatus | '' | null;
}

export type Target = 'staging' | 'production';

export interface CreateApprovalRequest {
  model: string;
  version: string;
  target: Target;
  reason?: string;
}

/** POST api/deployments: an approved version, to all traffic or a canary's share. */
export interface CreateDeployment {
  model: string;
  version: string;
  target: string;
  canary?: number;
}

/** `records` (rows) or `columns` (lists), as POST api/deployments/<name>/predict takes. */
export type PredictInput = Record<string, unknown>;

// ---- URLs ----

/** `api/a/b` with each part percent-encoded (a model name may hold a '/'). */
export function apiPath(...parts: Array<string | number>): string {
  return ['api', ...parts.map(p => encodeURIComponent(String(p)))].join('/');
}

/** `?k=v&...` of the set values (empty strings, null and undefined left out). */
export function queryString(query: Query): string {
  const pairs = Object.entries(query)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return pairs.length ? `?${pairs.join('&')}` : '';
}

// ---- page helpers ----

/**
 * The rows of loaded pages in order, each key once: a row that moved to a later
 * page while pages were being loaded is shown where it was seen first.
 */
export function flattenPages<T>(pages: T[][], key: (row: T) => string): T[] {
  const seen = new Set<string>();
  const rows: T[] = [];
  for (const page of pages) {
    for (const row of page) {
      const k = key(row);
      if (!seen.has(k)) {
        seen.add(k);
        rows.push(row);
      }
    }
  }
  return rows;
}

/** Loaded pages with the first one replaced by a fresh copy; later pages stay. */
export function withFreshFirstPage<T>(pages: T[][], first: T[]): T[][] {
  return [first, ...pages.slice(1)];
}

// ---- the client ----

async function failure(response: Response): Promise<MlplatError> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    // An unreadable body is reported by its status below.
  }
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === 'string') {
      const code = typeof body.code === 'string' ? body.code : 'error';
      return new MlplatError(body.error, code, response.status);
    }
    // Jupyter server's own errors (auth, XSRF) answer {"message", "reason"}.
    if (body && typeof body.message === 'string' && body.message) {
      return new MlplatError(body.message, 'error', response.status);
    }
  } catch {
    // Not JSON: a proxy's HTML page or plain text; the status says what happened.
  }
  const statusText = response.statusText ? ` ${response.statusText}` : '';
  return new MlplatError(
    `The server answered ${response.status}${statusText} without an explanation; try again, or check the Jupyter server's log.`,
    'http',
    response.status
  );
}

export class MlplatApi {
  constructor(private readonly request: RequestFn) {}

  /** One call: the parsed JSON answer, or a thrown MlplatError with its sentence. */
  async call<T>(
    method: 'GET' | 'POST',
    path: string,
    options: { query?: Query; body?: object } = {}
  ): Promise<T> {
    const url = path + queryString(options.query ?? {});
    // Revalidate every time, but not with 'no-store': for that ServerConnection appends a
    // bare timestamp to the query, which the platform refuses as an unknown parameter.
    const init: RequestInit = { method, cache: 'no-cache' };
    if (method === 'POST') {
      init.body = JSON.stringify(options.body ?? {});
      init.headers = { 'Content-Type': 'application/json' };
    }
    let response: Response;
    try {
      response = await this.request(url, init);
    } catch (error) {
      throw new MlplatError(
        `Cannot reach the Jupyter server (${errorMessage(error)}); check your connection and try again.`,
        'network',
        0
      );
    }
    if (!response.ok) {
      throw await failure(response);
    }
    const text = await response.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new MlplatError(
        `The server answered ${url} with something that is not JSON; check the Jupyter server's log.`,
        'bad_response',
        response.status
      );
    }
  }

  private get<T>(path: string, query?: Query): Promise<T> {
    return this.call<T>('GET', path, { query });
  }

  private post<T>(path: string, body: object = {}): Promise<T> {
    return this.call<T>('POST', path, { body });
  }

  // core

  me(): Promise<DescribeMe> {
    return this.get(apiPath('me'));
  }

  status(): Promise<DescribeStatus> {
    return this.get(apiPath('status'));
  }

  // runs

  experiments(page: PageRequest = {}): Promise<Page<DescribeExperiment>> {
    return this.get(apiPath('experiments'), { ...page });
  }

  runs(request: ListRunsRequest = {}): Promise<Page<DescribeRunSummary>> {
    return this.get(apiPath('runs'), { ...request });
  }

  run(runId: string): Promise<DescribeRun> {
    return this.get(apiPath('runs', runId));
  }

  runNotebook(runId: string): Promise<DescribeRunNotebook> {
    return this.get(apiPath('runs', runId, 'notebook'));
  }

  // models and approvals

  modelVersions(request: ListModelVersionsRequest = {}): Promise<Page<DescribeModelVersionState>> {
    return this.get(apiPath('models'), { ...request });
  }

  versionAudit(
    model: string,
    version: string,
    page: PageRequest = {}
  ): Promise<Page<DescribeAuditEvent>> {
    return this.get(apiPath('models', model, 'versions', version, 'audit'), {
      ...page
    });
  }

  approvals(request: ListApprovalsRequest = {}): Promise<Page<DescribeApprovalRequest>> {
    return this.get(apiPath('approvals'), { ...request });
  }

  approval(id: number): Promise<DescribeApprovalRequest> {
    return this.get(apiPath('approvals', id));
  }

  requestApproval(request: CreateApprovalRequest): Promise<DescribeApprovalRequest> {
    return this.post(apiPath('approvals'), request);
  }

  approve(id: number, comment: string): Promise<DescribeApprovalRequest> {
    return this.post(apiPath('approvals', id, 'approve'), { comment });
  }

  reject(id: number, comment: string): Promise<DescribeApprovalRequest> {
    return this.post(apiPath('approvals', id, 'reject'), { comment });
  }

  // deployments

  deployments(page: PageRequest = {}): Promise<Page<DescribeDeployment>> {
    return this.get(apiPath('deployments'), { ...page });
  }

  /** Serve an approved version (POST api/deployments); answers once its server is ready. */
  deploy(request: CreateDeployment): Promise<DescribeDeployment> {
    return this.post(apiPath('deployments'), request);
  }

  promote(name: string): Promise<DescribeDeployment> {
    return this.post(apiPath('deployments', name, 'promote'));
  }

  rollback(name: string): Promise<DescribeDeployment> {
    return this.post(apiPath('deployments', name, 'rollback'));
  }

  predict(name: string, input: PredictInput): Promise<PredictResponse> {
    return this.post(apiPath('deployments', name, 'predict'), input);
  }

  // jobs and schedules

  jobs(request: ListJobsRequest = {}): Promise<Page<DescribeJob>> {
    return this.get(apiPath('jobs'), { ...request });
  }

  job(id: number): Promise<DescribeJob> {
    return this.get(apiPath('jobs', id));
  }

  jobLogs(id: number): Promise<DescribeJobLogs> {
    return this.get(apiPath('jobs', id, 'logs'));
  }

  jobNotebook(id: number): Promise<DescribeJobNotebook> {
    return this.get(apiPath('jobs', id, 'notebook'));
  }

  cancelJob(id: number): Promise<DescribeJob> {
    return this.post(apiPath('jobs', id, 'cancel'));
  }

  rerunJob(id: number, parameters: Record<string, unknown>): Promise<DescribeJob> {
    return this.post(apiPath('jobs', id, 'rerun'), { parameters });
  }

  schedules(page: PageRequest = {}): Promise<Page<DescribeSchedule>> {
    return this.get(apiPath('schedules'), { ...page });
  }

  pauseSchedule(id: number): Promise<DescribeSchedule> {
    return this.post(apiPath('schedules', id, 'pause'));
  }

  resumeSchedule(id: number): Promise<DescribeSchedule> {
    return this.post(apiPath('schedules', id, 'resume'));
  }

  // pipelines

  pipelines(request: ListPipelinesRequest = {}): Promise<Page<DescribePipelineRun>> {
    return this.get(apiPath('pipelines'), { ...request });
  }

  pipeline(id: number): Promise<DescribePipelineRun> {
    return this.get(apiPath('pipelines', id));
  }

  pipelineLogs(id: number, task?: string): Promise<DescribePipelineLogs> {
    return this.get(apiPath('pipelines', id, 'logs'), { task });
  }

  pipelineTaskNotebook(id: number, task: string): Promise<DescribePipelineTaskNotebook> {
    return this.get(apiPath('pipelines', id, 'tasks', task, 'notebook'));
  }

  cancelPipeline(id: number): Promise<DescribePipelineRun> {
    return this.post(apiPath('pipelines', id, 'cancel'));
  }
}
