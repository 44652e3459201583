/**
 * `deltasync push <source>` and `deltasync conflicts list|resolve`: the two-way half of the CLI,
 * over the SQLite mirror that `sync` / `watch --out` keep (its outbox table holds the local edits).
 */
import { existsSync } from "node:fs";
import { ArgumentError, errorMessage, NotSupportedError } from "../core/errors.js";
import { createSqliteMirror } from "../orchestrator/sqlite-mirror.js";
import { createSqliteStateStore } from "../stores/sqlite.js";
import { createOutbox } from "../two-way/outbox.js";
import { push } from "../two-way/push.js";
import type { Conflict } from "../two-way/types.js";
import { credentialEnv, type SourceFlags } from "./commands.js";
import { EXIT } from "./errors.js";
import type { Output } from "./output.js";
import { loadCliSource, parseSourceUrl } from "./registry.js";

export const POLICIES = ["ask", "server-wins", "client-wins", "newest-wins"] as const;

export interface PushFlags extends Pick<SourceFlags, "out" | "password" | "token"> {
  policy: (typeof POLICIES)[number];
  /** Apply pending deletes that the mass-change guard paused (this push only). */
  confirmMassChange?: boolean;
}

/** The mirror file a two-way command works on: it must exist (sync or watch made it). */
function mirrorFile(file: string | undefined, flag: string, command: string): string {
  if (!file || file === "-") {
    throw new ArgumentError(
      `${command} needs ${flag} <mirror.sqlite>: the SQLite mirror holding the local edits (the file \`deltasync sync --out\` writes)`,
    );
  }
  if (!existsSync(file)) throw new ArgumentError(`${command}: no mirror at ${file}`);
  return file;
}

function describeConflict(c: Conflict): string {
  const remote = c.remote ? `server at ${c.remote.changeKey ?? "(no version)"}` : "gone on server";
  const state = c.status === "open" ? "open" : `resolved: ${resolutionText(c)}`;
  return `${c.id}  ${c.kind}  ${c.entry.sourcekey}  local ${c.entry.kind} on ${c.base ?? "(new)"}, ${remote}  ${new Date(c.at).toISOString()}  ${state}`;
}

function resolutionText(c: Conflict): string {
  const r = c.resolution;
  return typeof r === "object" ? "merged" : (r ?? "?");
}

/**
 * Pushes the local edits waiting in the mirror's outbox for `source` (pair = the source's key,
 * the mirror's `source` column). Resolves with the exit code: 0 when done, 6 when a conflict
 * pauses the pair.
 */
export async function pushCommand(
  source: string,
  flags: PushFlags,
  out: Output,
  signal: AbortSignal,
): Promise<number> {
  const file = mirrorFile(flags.out, "--out", "push");
  const url = parseSourceUrl(source);
  const cli = await loadCliSource(url.protocol.replace(/:$/, ""));
  const opened = await cli.open(url, { env: credentialEnv(flags, cli), signal });
  try {
    const target = opened.writeTarget;
    if (!target) {
      throw new NotSupportedError(
        `push: ${opened.key} can't be written (push needs one folder, calendar or address book of an adapter with a write surface: memory, CalDAV/CardDAV, Google Calendar)`,
      );
    }
    const mirror = createSqliteMirror(file, { source: opened.key, keyFor: target.keyFor });
    try {
      const pending = (await mirror.outbox.pending(opened.key)).length;
      const progress = out.progress(`push ${opened.key}`, pending);
      let pushed = 0;
      const result = await push(target, mirror.outbox, {
        pair: opened.key,
        policy: flags.policy,
        signal,
        confirmMassChange: flags.confirmMassChange,
        ...mirror.pushCallbacks,
        onPushed: (entry, res, info) => {
          mirror.pushCallbacks.onPushed(entry, res, info);
          progress.update(++pushed, 0);
        },
      }).finally(() => progress.stop());
      const { conflict, resolved, ...rest } = result;
      out.emit(
        {
          event: "push",
          ...rest,
          resolved: resolved.map((c) => ({ id: c.id, kind: c.kind, resolution: c.resolution })),
          ...(conflict ? { conflict: conflict.id } : {}),
        },
        `${opened.key}: pushed ${result.pushed} changes${resolved.length ? `, ${resolved.length} conflicts resolved by --policy ${flags.policy}` : ""}${result.status === "paused" ? "; paused" : ""}`,
      );
      if (!conflict) return EXIT.ok;
      out.note(
        `deltasync: conflict ${conflict.id} pauses ${opened.key}: ${describeConflict(conflict)}\n` +
          `  resolve it with: deltasync conflicts resolve '${conflict.id}' local|remote --mirror ${file}, then push again`,
      );
      return EXIT.conflict;
    } finally {
      mirror.close();
    }
  } finally {
    await opened.close();
  }
}

/** Opens the outbox of a mirror file (every source in it). */
function openOutbox(file: string) {
  // The table the default mirror (`mirror`) keeps its outbox in.
  return createOutbox(createSqliteStateStore(file, { table: "mirror_outbox" }));
}

export async function conflictsList(
  flags: { mirror?: string; source?: string; all?: boolean },
  out: Output,
): Promise<void> {
  const outbox = openOutbox(mirrorFile(flags.mirror, "--mirror", "conflicts list"));
  try {
    const list = await outbox.conflicts(flags.source, { all: Boolean(flags.all) });
    for (const c of list) {
      out.emit(
        {
          event: "conflict",
          id: c.id,
          pair: c.pair,
          kind: c.kind,
          status: c.status,
          sourcekey: c.entry.sourcekey,
          local: c.entry.kind,
          base: c.base ?? null,
          remote: c.remote ? (c.remote.changeKey ?? null) : "gone",
          at: new Date(c.at).toISOString(),
          ...(c.status === "resolved" ? { resolution: resolutionText(c) } : {}),
        },
        describeConflict(c),
      );
    }
    if (list.length === 0) out.note(`no ${flags.all ? "" : "open "}conflicts`);
  } finally {
    await outbox.close();
  }
}

export async function conflictsResolve(
  id: string,
  resolution: "local" | "remote",
  flags: { mirror?: string },
  out: Output,
): Promise<void> {
  const outbox = openOutbox(mirrorFile(flags.mirror, "--mirror", "conflicts resolve"));
  try {
    const cut = id.lastIndexOf("#");
    const pair = cut > 0 ? id.slice(0, cut) : undefined;
    const found =
      pair === undefined
        ? undefined
        : (await outbox.conflicts(pair, { all: true })).find((c) => c.id === id);
    if (!found) {
      throw new ArgumentError(
        `conflicts resolve: no conflict ${JSON.stringify(id)} in ${flags.mirror} (see deltasync conflicts list)`,
      );
    }
    if (found.status !== "open") {
      throw new ArgumentError(
        `conflicts resolve: ${id} is already resolved (${resolutionText(found)}${found.resolvedBy === "policy" ? ", by the push policy" : ""})`,
      );
    }
    try {
      await outbox.resolve(id, resolution);
    } catch (error) {
      throw new ArgumentError(`conflicts resolve: ${errorMessage(error)}`, { cause: error });
    }
    out.emit(
      { event: "resolved", id, pair: found.pair, resolution },
      `${id}: resolved (${resolution}); \`deltasync push\` of ${found.pair} carries it out`,
    );
  } finally {
    await outbox.close();
  }
}
