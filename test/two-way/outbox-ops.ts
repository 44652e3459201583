/**
 * Random commits on a pair's outbox, for comparing its storage forms: recorded changes of a few
 * objects, pushes completing the head (with and without the server's answer), forgotten echoes,
 * conflicts opened, resolved and carried out, and commits that fail halfway.
 */
import fc from "fast-check";
import {
  complete,
  dropObject,
  forgetEcho,
  type OutboxDoc,
  rewriteHead,
} from "../../src/two-way/log.js";
import type { Outbox } from "../../src/two-way/outbox.js";
import type { LocalChange, OutboxEntry } from "../../src/two-way/types.js";

export type OutboxOp =
  | { t: "record"; change: LocalChange }
  | { t: "complete"; answer: "none" | "version" | "object" | "rekey" }
  | { t: "forget"; id: number }
  | { t: "conflict" }
  | { t: "resolve" }
  | { t: "drop" }
  | { t: "rewrite" }
  | { t: "fail" };

const id = fc.nat(3).map((i) => `x${i}`);
const changeArbitrary: fc.Arbitrary<LocalChange> = fc.oneof(
  id.map((localId) => ({ kind: "create" as const, localId, sourcekey: `k${localId}`, data: 0 })),
  fc
    .record({ localId: id, data: fc.nat(9), changeKey: fc.option(fc.constantFrom("1", "2")) })
    .map(({ localId, data, changeKey }) => ({
      kind: "update" as const,
      localId,
      sourcekey: `k${localId}`,
      ...(changeKey ? { changeKey } : {}),
      data,
    })),
  id.map((localId) => ({ kind: "delete" as const, localId, sourcekey: `k${localId}` })),
  fc.record({ localId: id, parentKey: fc.constantFrom("f1", "f2") }).map((r) => ({
    kind: "move" as const,
    sourcekey: `k${r.localId}`,
    ...r,
  })),
  fc.record({ localId: id, isRead: fc.boolean() }).map((r) => ({
    kind: "read" as const,
    sourcekey: `k${r.localId}`,
    ...r,
  })),
);

export const outboxOpArbitrary: fc.Arbitrary<OutboxOp> = fc.oneof(
  { weight: 4, arbitrary: changeArbitrary.map((change) => ({ t: "record" as const, change })) },
  {
    weight: 3,
    arbitrary: fc
      .constantFrom("none" as const, "version" as const, "object" as const, "rekey" as const)
      .map((answer) => ({ t: "complete" as const, answer })),
  },
  { weight: 1, arbitrary: fc.nat(3).map((i) => ({ t: "forget" as const, id: i })) },
  { weight: 1, arbitrary: fc.constant({ t: "conflict" as const }) },
  { weight: 1, arbitrary: fc.constant({ t: "resolve" as const }) },
  { weight: 1, arbitrary: fc.constant({ t: "drop" as const }) },
  { weight: 1, arbitrary: fc.constant({ t: "rewrite" as const }) },
  { weight: 1, arbitrary: fc.constant({ t: "fail" as const }) },
);

const headSeq = (d: OutboxDoc) => d.entries[0]?.seq ?? 0;

/** Applies one op to pair `p`; resolves with what it returned (or the failure's message). */
export async function applyOp(outbox: Outbox, op: OutboxOp): Promise<unknown> {
  const pair = "p";
  try {
    switch (op.t) {
      case "record":
        return await outbox.record(pair, op.change);
      case "complete":
        return await outbox.update(
          pair,
          (d) => {
            const head = d.entries[0];
            if (!head) return false;
            const version = { sourcekey: head.sourcekey, changeKey: `v${head.seq}` };
            const answer =
              op.answer === "none"
                ? null
                : op.answer === "version"
                  ? version
                  : op.answer === "rekey"
                    ? { ...version, sourcekey: `${head.sourcekey}'` }
                    : {
                        ...version,
                        object: { ...version, type: "item" as const, data: head.seq },
                      };
            return complete(d, head.seq, answer);
          },
          { replayable: true },
        );
      case "forget":
        return await outbox.update(pair, (d) => forgetEcho(d, `kx${op.id}`));
      case "conflict":
        return await outbox.update(pair, (d) => {
          const head = d.entries[0];
          if (!head || d.conflicts.some((c) => c.status === "open")) return false;
          d.conflicts.push({
            id: `${pair}#${head.seq}.${d.conflicts.length}`,
            pair,
            kind: "edit",
            entry: head,
            remote: null,
            base: undefined,
            at: 1,
            status: "open",
          });
          return true;
        });
      case "resolve":
        return await outbox.update(pair, (d) => {
          for (const c of d.conflicts) {
            if (c.status !== "open") continue;
            c.status = "resolved";
            c.resolution = "local";
          }
        });
      case "drop":
        return await outbox.update(pair, (d) => dropObject(d, headSeq(d)));
      case "rewrite":
        return await outbox.update(pair, (d) => {
          const head = d.entries[0];
          return head ? rewriteHead(d, head.seq, { ...head, at: 2 } as OutboxEntry) : false;
        });
      case "fail":
        return await outbox.update(pair, (d) => {
          complete(d, headSeq(d), { sourcekey: "gone", changeKey: "x" });
          d.next += 5;
          throw new Error("a commit failing halfway");
        });
    }
  } catch (error) {
    return `failed: ${(error as Error).message}`;
  }
}
