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
    /** Messages per page (default 2,000: ~0.8 MB of envelopes; fewer pages, fewer round trips). */
    chunkSize: z.number().int().positive().max(10_000).optional(),
    /** IDLE is re-issued after this many ms (default 25 minutes; RFC 2177 says before 29). */
    idleRestartMs: z.number().int().positive().optional(),
    /** Connection attempts per operation before a `TransientError` (default 3). */
    connectAttempts: z.number().int().positive().max(10).optional(),
    /** First reconnect delay in ms, doubled per attempt (default 200). */
    backoffMs: z.number().int().nonnegative().optional(),
    /** How long the TCP (and TLS) connect may take, in ms (default 10 000). */
    connectTimeoutMs: z.number().int().positive().optional(),
    /** How long the server may take to send its greeting once connected, in ms (default 10 000). */
    greetingTimeoutMs: z.number().int().positive().optional(),
    /**
     * How long one operation may take, in ms (default 60 000): a login, or one page (a SELECT
     * plus a FETCH of up to `chunkSize` messages). The connection is then dropped and the
     * operation retried like any other dropped connection.
     */
    commandTimeoutMs: z.number().int().positive().optional(),
  })
  .strict();

export type ImapOptions = z.input<typeof imapOptionsSchema>;
export type ImapFetchMode = z.infer<typeof fetchModeSchema>;
export type ImapSyncMode = z.infer<typeof syncModeSchema>;

/**
 * One mailbox's cursor: UIDVALIDITY, HIGHESTMODSEQ (absent with NOMODSEQ or in plain mode) and
 * UIDNEXT. `u` (the UIDs the importer may hold, as ranges) only where expunges must be found by
 * diffing (CONDSTORE without QRESYNC, plain); `f` (flag signature → UIDs, the empty signature
 * omitted) only in plain mode, where flags are diffed too. Older states carried both in every
 * mode; they still parse (a field the mode does not use is ignored).
 */
export const mailboxCursorSchema = z
  .object({
    v: z.string().regex(/^\d+$/),
    m: z.string().regex(/^\d+$/).optional(),
    n: z.number().int().nonnegative(),
    u: z.string().optional(),
    f: z.record(z.string(), z.string()).optional(),
  })
  .strict();
export type MailboxCursor = z.infer<typeof mailboxCursorSchema>;

/**
 * A page token: UIDs still to fetch (and deliver) this round. `m`/`n` were the round's final
 * HIGHESTMODSEQ/UIDNEXT in older states; they are accepted and ignored (the cursor now moves on
 * the round's first page).
 */
export const mailboxPageSchema = z
  .object({
    k: z.enum(["full", "fetch"]),
    todo: z.string(),
    /** UIDs of `todo` per page, when not `chunkSize` (a full sync paging by UID range). */
    w: z.number().int().positive().optional(),
    m: z.string().regex(/^\d+$/).optional(),
    n: z.number().int().nonnegative().optional(),
  })
  .strict();
export type MailboxPage = z.infer<typeof mailboxPageSchema>;
