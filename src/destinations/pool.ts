/**
 * The connection pool, a wrapper around any destination: a plugin that says `reuse` has its connections kept per
 * destination on this worker and handed to every step of a run (and to later runs), closed after 30 s unused or when
 * the connection drops. A retried step asks for a `fresh` one: the connection its previous attempt used may be the one
 * that stalled (alive for TCP and keepalives, but answering nothing).
 */
import type { Connection, DestinationSession, OpenOptions } from './types.js';

const IDLE_MS = 30_000;

interface Entry {
  pending: Promise<Connection>;
  refs: number;
  timer?: NodeJS.Timeout;
  /** Replaced by a fresh connection while still leased: closed when its last lease is released, not before. */
  retired?: boolean;
}

const entries = new Map<string, Entry>();

/** The session `s` whose `release` is `release` (every other member is the session's own, bound to it). */
function lease(s: Connection, release: () => void): DestinationSession {
  let released = false;
  return new Proxy(s, {
    get(target, key) {
      if (key === 'release') return () => { if (!released) { released = true; release(); } };
      const v: unknown = Reflect.get(target, key, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

function drop(key: string, e: Entry): void {
  if (entries.get(key) === e) entries.delete(key);
  clearTimeout(e.timer);
  void e.pending.then((c) => c.close(), () => undefined);
}

/**
 * Takes `e` out of the pool for a fresh connection. A connection other steps still hold (another job's upload on the
 * same destination) is not closed under them: it closes when its last lease is released.
 */
function retire(key: string, e: Entry): void {
  if (entries.get(key) === e) entries.delete(key);
  clearTimeout(e.timer);
  e.retired = true;
  if (e.refs === 0) drop(key, e);
}

/**
 * A session from the pool under `key` (the destination's name and config), connecting with `connect` when there is no
 * live one (or `fresh` is asked); without `reuse`, a new connection closed on release.
 */
export async function pooled(key: string, reuse: boolean, connect: () => Promise<Connection>, opts: OpenOptions = {}): Promise<DestinationSession> {
  if (!reuse) {
    const c = await connect();
    return lease(c, () => c.close());
  }
  let e = entries.get(key);
  if (e && opts.fresh) {
    retire(key, e);
    e = undefined;
  }
  if (e) {
    const existing = await e.pending.catch(() => undefined);
    if (!existing || existing.closed) {
      drop(key, e);
      e = undefined;
    }
  }
  if (!e) {
    const created: Entry = { pending: connect(), refs: 0 };
    entries.set(key, created);
    created.pending.catch(() => { if (entries.get(key) === created) entries.delete(key); });
    e = created;
  }
  const entry = e;
  const c = await entry.pending;
  entry.refs++;
  clearTimeout(entry.timer);
  return lease(c, () => {
    entry.refs = Math.max(0, entry.refs - 1);
    if (entry.refs > 0) return;
    if (entry.retired) {
      drop(key, entry);
      return;
    }
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => drop(key, entry), IDLE_MS);
    entry.timer.unref();
  });
}

/** Closes every pooled connection (worker shutdown, end of a CLI command). */
export async function closePooled(): Promise<void> {
  const all = [...entries.entries()];
  entries.clear();
  for (const [, e] of all) {
    clearTimeout(e.timer);
    (await e.pending.catch(() => undefined))?.close();
  }
}
