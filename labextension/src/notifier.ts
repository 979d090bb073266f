/**
 * The background poller behind the notifications: every few seconds, while the page
 * is open (panel shown or not), it reads the user's job runs and pending approval
 * requests and hands what changed (see notify.ts) to `show`.
 */

import { DescribeApprovalRequest, DescribeJob, MlplatApi } from './api';
import { Notice, approvalNotices, decidedSince, jobNotices } from './notify';

export const NOTIFY_INTERVAL_MS = 5000;
const JOBS_LIMIT = 50;
// Pending requests are listed oldest first; a generous page keeps the user's own in it.
const PENDING_LIMIT = 500;

export class NotificationPoller {
  private user: string | null = null;
  private jobs: DescribeJob[] | null = null;
  private pending: DescribeApprovalRequest[] | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private busy = false;

  constructor(
    private readonly api: MlplatApi,
    private readonly show: (notice: Notice) => void,
    private readonly intervalMs = NOTIFY_INTERVAL_MS
  ) {}

  start(): void {
    if (this.timer === null) {
      void this.tick();
      this.timer = setInterval(() => void this.tick(), this.intervalMs);
    }
  }

  stop(): void {
    if (this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** One poll. A failed read keeps the previous list, so nothing is lost or repeated. */
  async tick(): Promise<void> {
    if (this.busy) {
      return;
    }
    this.busy = true;
    try {
      if (this.user === null) {
        try {
          this.user = (await this.api.me()).user;
        } catch {
          return; // the platform is not answering yet; ask again next time
        }
      }
      const notices = [
        ...(await this.jobNotices(this.user)),
        ...(await this.approvalNotices(this.user))
      ];
      notices.forEach(notice => this.show(notice));
    } finally {
      this.busy = false;
    }
  }

  private async jobNotices(user: string): Promise<Notice[]> {
    try {
      const page = await this.api.jobs({ limit: JOBS_LIMIT });
      const notices = jobNotices(this.jobs, page.items, user);
      this.jobs = page.items;
      return notices;
    } catch {
      return [];
    }
  }

  private async approvalNotices(user: string): Promise<Notice[]> {
    let pending: DescribeApprovalRequest[];
    try {
      pending = (await this.api.approvals({ pending: true, limit: PENDING_LIMIT })).items;
    } catch {
      return [];
    }
    // A request leaves the pending list when it is decided; read each to see how.
    const decided = await Promise.all(
      decidedSince(this.pending, pending, user).map(id => this.api.approval(id).catch(() => null))
    );
    const notices = approvalNotices(
      this.pending,
      decided.filter((r): r is DescribeApprovalRequest => r !== null),
      user
    );
    this.pending = pending;
    return notices;
  }
}
