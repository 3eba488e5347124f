import { z } from 'zod';
import { Port, SecretRef, pluginType } from '../../config/fields.js';

/** An `email` notifier: mails through an SMTP server. */
export const emailNotifierSchema = z.strictObject({
  type: pluginType('email', 'notifier'),
  host: z.string().min(1).meta({ description: 'SMTP server host name', examples: ['smtp.example.org'] }),
  port: Port.default(587).meta({ description: 'SMTP port (587: submission with STARTTLS, 465: TLS)', examples: [587] }),
  /** true: TLS from the first byte (port 465); false: STARTTLS (required when `requireTLS`). */
  secure: z.boolean().default(false)
    .meta({ description: 'true: TLS from the first byte (port 465); false: STARTTLS when the server offers it', examples: [false] }),
  /** Default: on whenever a password is set, so a server that strips STARTTLS never sees the password. */
  requireTLS: z.boolean().optional().meta({
    description: 'refuse to send without STARTTLS; default: on when a password is set (set false only for a trusted plain-text relay)',
    examples: [true],
  }),
  user: z.string().optional().meta({ description: 'SMTP login; left out: no authentication', examples: ['backupctl@example.org'] }),
  password: SecretRef.optional().meta({ description: 'the SMTP password, as a secret reference', examples: [{ env: 'SMTP_PASSWORD' }] }),
  from: z.string().min(3).meta({ description: 'sender address', examples: ['backupctl@example.org'] }),
  to: z.array(z.string().min(3)).min(1).meta({ description: 'recipient addresses', examples: [['ops@example.org']] }),
  onSuccess: z.boolean().default(true).meta({ description: 'also mail successful runs (failures are always mailed)', examples: [true] }),
});
export type EmailNotifierConfig = z.infer<typeof emailNotifierSchema>;
