/**
 * CI runs every property with one seed per commit (`FC_SEED`, set by .ci/run from the commit
 * hash): a commit's verdict can be replayed exactly, and every commit still draws new
 * histories. Without `FC_SEED` each run is random. A test that passes its own `seed` keeps it.
 */
import fc from "fast-check";

const seed = process.env.FC_SEED;
if (seed !== undefined && seed !== "") {
  const n = Number(seed);
  if (!Number.isSafeInteger(n)) {
    throw new Error(`FC_SEED must be an integer, got ${JSON.stringify(seed)}`);
  }
  fc.configureGlobal({ ...fc.readConfigureGlobal(), seed: n });
}
