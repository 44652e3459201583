/**
 * Checks that notification filters deliver exactly the matching events.
 */
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import {
  EVENT_TYPES,
  type Notification,
  type NotificationFilter,
  OBJECT_TYPES,
} from "../core/types.js";
import { matchesFilter } from "../notify/filter.js";
import { ConformanceError, replayParameters } from "./conformance.js";
import type { ConformanceHarness } from "./harness.js";
import { diffMirror } from "./mirror.js";

const filterArbitrary: fc.Arbitrary<NotificationFilter> = fc.record(
  {
    objectTypes: fc.subarray([...OBJECT_TYPES]),
    eventTypes: fc.subarray([...EVENT_TYPES]),
  },
  { requiredKeys: [] },
);

/**
 * For random mutations and random filters, every push-capable scope must deliver through a
 * filtered subscription exactly the notifications of an unfiltered one that match the filter,
 * each well formed, and at least one notification once something changed in it.
 */
export async function checkNotificationFilters<Op>(
  harness: ConformanceHarness<Op>,
  options: { numRuns: number; seed?: number; quietMs?: number },
): Promise<void> {
  await fc.assert(
    fc.asyncProperty(
      fc.array(harness.mutation, { minLength: 1, maxLength: 12 }),
      filterArbitrary,
      async (ops, filter) => {
        const backend = await harness.setup();
        const subs: { unsubscribe(): void }[] = [];
        try {
          const seen = backend.scopes
            .filter((s) => s.syncable.supportsPush)
            .map((scope) => {
              const all: Notification[] = [];
              const some: Notification[] = [];
              subs.push(scope.syncable.subscribe((n) => void all.push(n)));
              subs.push(scope.syncable.subscribe((n) => void some.push(n), filter));
              return { scope, all, some, before: scope.truth() };
            });
          for (const { before } of seen) await before;
          for (const op of ops) await backend.apply(op);
          await backend.settle?.();
          await new Promise((r) => setTimeout(r, options.quietMs ?? 0));
          for (const { scope, all, some, before } of seen) {
            if (all.length === 0 && diffMirror(await before, await scope.truth()) !== undefined) {
              throw new ConformanceError(
                `${harness.name} ${scope.name}: the scope changed but no notification arrived`,
              );
            }
            for (const n of all) {
              if (
                !OBJECT_TYPES.includes(n.objectType) ||
                !EVENT_TYPES.includes(n.eventType) ||
                !n.object?.sourcekey ||
                !n.scope
              ) {
                throw new ConformanceError(
                  `${harness.name} ${scope.name}: malformed notification ${JSON.stringify(n)}`,
                );
              }
            }
            const expected = all.filter((n) => matchesFilter(n, filter));
            if (!isDeepStrictEqual(some, expected)) {
              throw new ConformanceError(
                `${harness.name} ${scope.name}: filter ${JSON.stringify(filter)} delivered ${some.length} notifications, expected ${expected.length}`,
              );
            }
          }
        } finally {
          for (const s of subs) s.unsubscribe();
          await backend.teardown();
        }
      },
    ),
    { numRuns: options.numRuns, ...replayParameters(options), endOnFailure: true },
  );
}
