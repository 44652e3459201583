/**
 * Deterministic memory backends that every process rebuilds identically: an account's server at
 * version v is its seeded mailbox plus v seeded rounds of creates, edits and deletes. A worker
 * keeps its copy and replays only the rounds it has not seen, so N processes share one "backend".
 */
import { createMemoryServer, type MemoryServer } from "../../adapters/memory/index.js";
import { generateDemoServer, seededRandom } from "../../src/cli/demo-data.js";

export interface Backend {
  server: MemoryServer;
  version: number;
}

function seedOf(account: string): number {
  let h = 2166136261;
  for (const ch of account) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return h >>> 0;
}

export function createBackend(account: string, items: number, pageSize: number): Backend {
  const server = createMemoryServer({ pageSize, epoch: `scale-${account}` });
  generateDemoServer(server, items, seedOf(account));
  return { server, version: 0 };
}

/** Replays rounds up to `version`: creates, content edits and deletes (no read toggles). */
export function advance(backend: Backend, account: string, version: number, perRound = 5): void {
  while (backend.version < version) {
    backend.version++;
    const rnd = seededRandom(seedOf(account) + backend.version * 7919);
    const { server } = backend;
    const store = server.store("alice");
    const inbox = store.folders().find((f) => f.name === "Inbox");
    for (let n = 0; n < perRound; n++) {
      const items = server.allItems();
      const r = rnd();
      const target = items[Math.floor(rnd() * items.length)];
      if (r < 0.4 || !target) {
        if (inbox)
          store.folder(inbox.sourcekey).createItem({ subject: `new ${backend.version}.${n}` });
      } else if (r < 0.8) {
        server.updateItem(target.sourcekey, { ...target.fields, edit: `${backend.version}.${n}` });
      } else {
        server.deleteItem(target.sourcekey);
      }
    }
  }
}

/** The backend's items as the mirror should hold them, sorted by sourcekey. */
export function expectedRows(server: MemoryServer) {
  return server
    .allItems()
    .map((i) => ({
      sourcekey: i.sourcekey,
      parentKey: i.parentKey,
      changeKey: server.item(i.sourcekey).changeKey,
      fields: i.fields,
      isRead: i.read,
    }))
    .sort((a, b) => (a.sourcekey < b.sourcekey ? -1 : a.sourcekey > b.sourcekey ? 1 : 0));
}

/** The mirror's rows in the same shape. */
export function actualRows(
  rows: {
    sourcekey: string;
    parentKey: string | null;
    changeKey: string | null;
    data: unknown;
    isRead: boolean | null;
  }[],
) {
  return rows.map((r) => ({
    sourcekey: r.sourcekey,
    parentKey: r.parentKey,
    changeKey: r.changeKey,
    fields: (r.data as { fields?: unknown } | null)?.fields,
    isRead: r.isRead,
  }));
}

/**
 * An audit of every write to a mirror table, by trigger, in the writing transaction (so rolled
 * back writes leave nothing): a batch applied twice shows up as one version written twice.
 */
export const AUDIT_SQL = (table: string) => `
  CREATE TABLE IF NOT EXISTS ${table}_audit (source TEXT, sourcekey TEXT, change_key TEXT, op TEXT, tx BIGINT);
  CREATE OR REPLACE FUNCTION ${table}_audit_fn() RETURNS trigger AS $$
  BEGIN
    IF TG_OP = 'DELETE' THEN
      INSERT INTO ${table}_audit VALUES (OLD.source, OLD.sourcekey, OLD.change_key, 'delete', txid_current());
      RETURN OLD;
    END IF;
    INSERT INTO ${table}_audit VALUES (NEW.source, NEW.sourcekey, NEW.change_key, 'write', txid_current());
    RETURN NEW;
  END $$ LANGUAGE plpgsql;
  DROP TRIGGER IF EXISTS ${table}_audit_tr ON ${table};
  CREATE TRIGGER ${table}_audit_tr AFTER INSERT OR UPDATE OR DELETE ON ${table}
    FOR EACH ROW EXECUTE FUNCTION ${table}_audit_fn();`;

/** Versions written (or keys deleted) more than once, among the sources in `$1`. */
export const AUDIT_DUPLICATES = (table: string) => `
  SELECT source, sourcekey, change_key, op, count(*)::int AS n FROM ${table}_audit
  WHERE source = ANY($1) GROUP BY source, sourcekey, change_key, op HAVING count(*) > 1`;
