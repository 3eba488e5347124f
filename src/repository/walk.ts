/**
 * Walking a destination: its tier folders, and the slot folders `<tier>/YYYY/MM/DD/HHMM` of a tier, newest first,
 * listing only as far as the caller reads. Knows folders only; what lies in them is src/repository/names.ts.
 */
import type { DestinationSession } from '../destinations/types.js';
import { isName } from './names.js';

const byNameDesc = (a: { name: string }, b: { name: string }) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0);

/** The slot folders `<tier>/YYYY/MM/DD/HHMM` of one tier, newest first (lists only as far as it is read). */
export async function* slotDirsNewestFirst(d: DestinationSession, tier: string): AsyncGenerator<string> {
  const dirs = async (p: string, re: RegExp) => ((await d.list(p)) ?? []).filter((e) => e.type === 'dir' && re.test(e.name)).sort(byNameDesc);
  for (const y of await dirs(tier, /^\d{4}$/)) {
    for (const m of await dirs(`${tier}/${y.name}`, /^\d\d$/)) {
      for (const day of await dirs(`${tier}/${y.name}/${m.name}`, /^\d\d$/)) {
        for (const t of await dirs(`${tier}/${y.name}/${m.name}/${day.name}`, /^\d{4}$/)) yield `${tier}/${y.name}/${m.name}/${day.name}/${t.name}`;
      }
    }
  }
}

/** The tier folders on a destination: every top-level folder whose name is of the name grammar (hidden ones are not). */
export async function tiersOf(d: DestinationSession): Promise<string[]> {
  return ((await d.list('')) ?? []).filter((e) => e.type === 'dir' && isName(e.name)).map((e) => e.name).sort();
}
