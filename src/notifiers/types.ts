import type { BackupEvent } from '../contracts/events.js';

export interface RenderedMessage {
  /** Stable across resends after a crash: derived from the workflow ID and the event. */
  id: string;
  subject: string;
  text: string;
}

export interface Notifier {
  readonly name: string;
  readonly type: string;
  /** Whether this notifier wants this event (failures and cancellations always). */
  wants(event: BackupEvent): boolean;
  send(event: BackupEvent, message: RenderedMessage): Promise<void>;
  /** Checks the connection and credentials, for `config check`. */
  check(): Promise<string>;
}
