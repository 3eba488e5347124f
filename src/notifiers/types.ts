import type { z } from 'zod';
import type { SecretRef } from '../config/fields.js';
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

/**
 * A notifier type: the module `src/notifiers/<type>/plugin.ts` exports one as `plugin`, and
 * src/notifiers/registry.ts lists it under its `type`.
 */
export interface NotifierPlugin<S extends NotifierSchema = NotifierSchema, C = z.output<S>> {
  readonly type: string;
  /** The config of one notifier of this type (a strict zod object with a `type` literal), every field described. */
  readonly schema: S;
  create(name: string, cfg: C): Notifier;
  /** Every secret reference in a config (relative `file` paths are resolved against the config file). */
  secretRefs(cfg: C): SecretRef[];
}

/** What a notifier plugin's schema must be: a zod object whose `type` is a literal. */
export type NotifierSchema = z.ZodType<{ type: string }> & z.core.$ZodTypeDiscriminable;
