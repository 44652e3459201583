/**
 * Options and state shapes of the IMAP adapter, validated with zod.
 */
import { z } from "zod";

/** What a full or incremental sync fetches for each message. */
export const fetchModeSchema = z.enum(["envelope", "bodyStructure", "source"]);

/** Which change-detection strategy to use; `auto` picks QRESYNC, then CONDSTORE, then plain. */
export const syncModeSchema = z.enum(["auto", "qresync", "condstore", "plain"]);

export const imapOptionsSchema = z
  .object({
    host: z.string().min(1),
    port: z.number().int().positive().max(65535).optional(),
    /** Implicit TLS (port 993). */
    secure: z.boolean().optional(),
    /** STARTTLS: `true` requires it, `false` never uses it; default: use it when offered. */
    starttls: z.boolean().optional(),
    user: z.string().min(1),
    password: z.string().optional(),
    /** OAuth2 access token (XOAUTH2 / OAUTHBEARER) instead of a password. */
    accessToken: z.string().optional(),
    /** Accept self-signed certificates (tests only). */
    tlsInsecure: z.boolean().optional(),
    fetch: fetchModeSchema.optional(),
    mode: syncModeSchema.optional(),
    /** Messages per page of a full sync (default 500). */
    chunkSize: z.number().int().positive().max(10_000).optional(),
    /** IDLE is re-issued after this many ms (default 25 minutes; RFC 2177 says before 29). */
    idleRestartMs: z.number().int().positive().optional(),
    /** Connection attempts per operation before a `TransientError` (default 3). */
    connectAttempts: z.number().int().positive().max(10).optional(),
    /** First reconnect delay in ms, doubled per attempt (default 200). */
    backoffMs: z.number().int().nonnegative().optional(),
  })
  .strict();

export type ImapOptions = z.input<typeof imapOptionsSchema>;
export type ImapFetchMode = z.infer<typeof fetchModeSchema>;
export type ImapSyncMode = z.infer<typeof syncModeSchema>;

/**
 * One mailbox's cursor: UIDVALIDITY, HIGHESTMODSEQ (absent with NOMODSEQ or in plain mode),
 * UIDNEXT, and the known UIDs with their flags as compact ranges (`u`: every known UID;
 * `f`: flag signature → UIDs, the empty signature omitted).
 */
export const mailboxCursorSchema = z
  .object({
    v: z.string().regex(/^\d+$/),
    m: z.string().regex(/^\d+$/).optional(),
    n: z.number().int().nonnegative(),
    u: z.string(),
    f: z.record(z.string(), z.string()),
  })
  .strict();
export type MailboxCursor = z.infer<typeof mailboxCursorSchema>;

/** A page token: UIDs still to fetch this round; `m`/`n` are the round's final HIGHESTMODSEQ/UIDNEXT. */
export const mailboxPageSchema = z
  .object({
    k: z.enum(["full", "fetch"]),
    todo: z.string(),
    m: z.string().regex(/^\d+$/).optional(),
    n: z.number().int().nonnegative().optional(),
  })
  .strict();
export type MailboxPage = z.infer<typeof mailboxPageSchema>;
