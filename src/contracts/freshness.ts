/**
 * The scheduled freshness check (src/workflows/freshness.ts; each job checked by src/activities/monitor.ts from
 * src/monitor/status.ts): what it reports, and when a lasting problem is alerted again. Node-free.
 */
export const FRESHNESS_WORKFLOW = 'freshnessWorkflow';

/** A problem already alerted: when it was first seen and last sent, and how often. */
export interface AlertRecord {
  job: string;
  /** The problem without its numbers (problemKey): "27.3 h old" and "28.1 h old" are one lasting problem. */
  key: string;
  firstSeen: string;
  lastSent: string;
  sent: number;
}

/** Every problem alerted and still present, by `${job}\n${key}`. Carried from one check to the next. */
export type AlertState = Record<string, AlertRecord>;

/** A lasting problem is alerted again after 1 h, then 4 h, then every day: not at every check. */
export const ALERT_BACKOFF_MS = [3_600_000, 4 * 3_600_000, 24 * 3_600_000] as const;

/** One alert to send: a job's problems that are due, under an ID stable per job, problems and day. */
export interface DueAlert {
  job: string;
  problems: string[];
  /** The same for a retry of the same alert (also of the whole check) on the same UTC day. */
  alertId: string;
}

/** A problem's identity: its text with every number (ages, sizes, dates in paths) replaced by `#`. */
export function problemKey(problem: string): string {
  return problem.replace(/\d+(\.\d+)?/g, '#');
}

/**
 * Which problems are due for an alert now, and the state to carry to the next check. A new problem is due at once; a
 * lasting one after ALERT_BACKOFF_MS since it was last sent; a problem gone from a job that was checked is forgotten
 * (when it comes back it is new). Jobs that could not be checked (`unchecked`) keep their state as it was.
 */
export function planAlerts(checked: { job: string; problems: string[] }[], previous: AlertState | undefined, now: Date, unchecked: string[] = []): { due: DueAlert[]; state: AlertState } {
  const state: AlertState = {};
  for (const [id, r] of Object.entries(previous ?? {})) if (unchecked.includes(r.job)) state[id] = r;
  const nowIso = now.toISOString();
  const day = nowIso.slice(0, 10);
  const due: DueAlert[] = [];
  for (const { job, problems } of checked) {
    const dueProblems: string[] = [];
    const dueKeys: string[] = [];
    for (const problem of problems) {
      const key = problemKey(problem);
      const id = `${job}\n${key}`;
      if (state[id]) continue; // the same problem twice in one check
      const before = previous?.[id];
      const wait = before ? ALERT_BACKOFF_MS[Math.min(before.sent, ALERT_BACKOFF_MS.length) - 1]! : 0;
      if (before && now.getTime() - Date.parse(before.lastSent) < wait) {
        state[id] = before;
        continue;
      }
      state[id] = { job, key, firstSeen: before?.firstSeen ?? nowIso, lastSent: nowIso, sent: (before?.sent ?? 0) + 1 };
      dueProblems.push(problem);
      dueKeys.push(key);
    }
    if (dueProblems.length > 0) due.push({ job, problems: dueProblems, alertId: `alert:${job}:${day}:${[...dueKeys].sort().join('|')}` });
  }
  return { due, state };
}

/** The previous check's alert state from its result (Temporal hands a scheduled run the last one's); anything else is none. */
export function alertStateOf(lastResult: unknown): AlertState | undefined {
  if (typeof lastResult !== 'object' || lastResult === null) return undefined;
  const alerts = (lastResult as { alerts?: unknown }).alerts;
  if (typeof alerts !== 'object' || alerts === null) return undefined;
  const state: AlertState = {};
  for (const [id, r] of Object.entries(alerts as Record<string, unknown>)) {
    const rec = r as Partial<AlertRecord> | null;
    if (rec && typeof rec.job === 'string' && typeof rec.key === 'string' && typeof rec.firstSeen === 'string' && typeof rec.lastSent === 'string'
      && typeof rec.sent === 'number' && Number.isSafeInteger(rec.sent) && rec.sent > 0 && !Number.isNaN(Date.parse(rec.lastSent))) {
      state[id] = { job: rec.job, key: rec.key, firstSeen: rec.firstSeen, lastSent: rec.lastSent, sent: rec.sent };
    }
  }
  return state;
}
