/**
 * A realistic generated mailbox, calendar and address book on a memory server, and a change
 * generator that mutates it like a busy user would. Seeded, so the same seed gives the same server.
 */
import type { MemoryServer } from "../../adapters/memory/index.js";

/** A small, fast, seeded PRNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST = [
  "Ada",
  "Grace",
  "Alan",
  "Linus",
  "Margaret",
  "Ken",
  "Barbara",
  "Dennis",
  "Frances",
  "Edsger",
  "Radia",
  "Tim",
  "Hedy",
  "Donald",
  "Katherine",
  "John",
];
const LAST = [
  "Lovelace",
  "Hopper",
  "Turing",
  "Torvalds",
  "Hamilton",
  "Thompson",
  "Liskov",
  "Ritchie",
  "Allen",
  "Dijkstra",
  "Perlman",
  "Berners-Lee",
  "Lamarr",
  "Knuth",
  "Johnson",
  "McCarthy",
];
const TOPICS = [
  "quarterly report",
  "release 2.4",
  "offsite plans",
  "invoice #",
  "design review",
  "on-call handover",
  "budget",
  "customer escalation",
  "hiring loop",
  "security audit",
  "roadmap",
  "lunch",
];
const VERBS = ["Re:", "Fwd:", "Update on", "Question about", "Draft:", "Reminder:", ""];
const PLACES = ["Room 4.12", "Zoom", "Cafeteria", "Main hall", "Client office", "Phone"];

export interface DemoLayout {
  store: string;
  mailFolders: string[];
  calendar: string;
  contacts: string;
}

export const DEMO_LAYOUT: DemoLayout = {
  store: "alice",
  mailFolders: ["Inbox", "Sent", "Archive", "Work", "Newsletters"],
  calendar: "Calendar",
  contacts: "Contacts",
};

function pick<T>(rnd: () => number, list: readonly T[]): T {
  return list[Math.floor(rnd() * list.length)] as T;
}

function person(rnd: () => number): { name: string; email: string } {
  const first = pick(rnd, FIRST);
  const last = pick(rnd, LAST);
  return {
    name: `${first} ${last}`,
    email: `${`${first}.${last}`.toLowerCase().replace(/[^a-z.]/g, "")}@example.org`,
  };
}

const BASE_TIME = Date.UTC(2026, 0, 1);

function mail(rnd: () => number, i: number): Record<string, unknown> {
  const from = person(rnd);
  const topic = pick(rnd, TOPICS);
  return {
    subject: `${pick(rnd, VERBS)} ${topic}${topic.endsWith("#") ? 1000 + i : ""}`.trim(),
    from: from.email,
    fromName: from.name,
    to: "alice@example.org",
    receivedAt: new Date(BASE_TIME + Math.floor(rnd() * 300) * 86_400_000 + i * 1000).toISOString(),
    size: 1000 + Math.floor(rnd() * 90_000),
    preview: `Hi Alice, about the ${topic}: ${["can we talk", "see attached", "thanks!", "any update?"][i % 4]}`,
  };
}

function event(rnd: () => number, i: number): Record<string, unknown> {
  const start =
    BASE_TIME + Math.floor(rnd() * 365) * 86_400_000 + (8 + Math.floor(rnd() * 10)) * 3_600_000;
  return {
    summary: `${pick(rnd, TOPICS)} sync`,
    location: pick(rnd, PLACES),
    start: new Date(start).toISOString(),
    end: new Date(start + (1 + Math.floor(rnd() * 3)) * 1_800_000).toISOString(),
    organizer: person(rnd).email,
    seq: i,
  };
}

function contact(rnd: () => number, i: number): Record<string, unknown> {
  const p = person(rnd);
  return {
    name: p.name,
    email: p.email.replace("@", `${i}@`),
    phone: `+1-555-${String(1000 + (i % 9000))}`,
  };
}

/**
 * Fills a memory server with `items` objects: ~70% mail in several folders, ~15% events,
 * ~15% contacts, in store `alice`.
 */
export function generateDemoServer(server: MemoryServer, items: number, seed = 1): void {
  const rnd = seededRandom(seed);
  const store = server.createStore(DEMO_LAYOUT.store);
  const mailFolders = DEMO_LAYOUT.mailFolders.map((name) =>
    store.createFolder({ name, kind: "mail" }),
  );
  const calendar = store.createFolder({ name: DEMO_LAYOUT.calendar, kind: "calendar" });
  const contacts = store.createFolder({ name: DEMO_LAYOUT.contacts, kind: "contacts" });
  const nMail = Math.round(items * 0.7);
  const nEvents = Math.round(items * 0.15);
  const nContacts = items - nMail - nEvents;
  for (let i = 0; i < nMail; i++) {
    // Inbox holds the most, newsletters the fewest.
    const r = rnd();
    const folder = mailFolders[r < 0.45 ? 0 : r < 0.6 ? 1 : r < 0.8 ? 2 : r < 0.93 ? 3 : 4];
    folder?.createItem(mail(rnd, i), { read: rnd() < 0.7 });
  }
  for (let i = 0; i < nEvents; i++) calendar.createItem(event(rnd, i));
  for (let i = 0; i < nContacts; i++) contacts.createItem(contact(rnd, i));
}

/** One applied mutation, for printing. */
export interface DemoChange {
  op: "create" | "update" | "delete" | "move" | "read" | "unread";
  sourcekey: string;
  folder: string;
  summary: string;
}

/** Applies `count` random, realistic mutations to store `alice` and describes them. */
export function mutateDemoServer(
  server: MemoryServer,
  rnd: () => number,
  count: number,
): DemoChange[] {
  const store = server.store(DEMO_LAYOUT.store);
  const folders = store.folders();
  const byName = new Map(folders.map((f) => [f.name, f.sourcekey]));
  const nameOf = new Map(folders.map((f) => [f.sourcekey, f.name]));
  const items = server.allItems().filter((i) => i.store === DEMO_LAYOUT.store);
  const out: DemoChange[] = [];
  for (let n = 0; n < count; n++) {
    const r = rnd();
    const target = items.length ? items[Math.floor(rnd() * items.length)] : undefined;
    const inbox = byName.get("Inbox");
    if (r < 0.3 || !target) {
      if (!inbox) break;
      const fields = mail(rnd, Math.floor(rnd() * 1e6));
      const key = store.folder(inbox).createItem(fields, { read: false });
      out.push({ op: "create", sourcekey: key, folder: "Inbox", summary: String(fields.subject) });
      continue;
    }
    const folder = nameOf.get(target.parentKey) ?? "?";
    const title = String(
      target.fields.subject ?? target.fields.summary ?? target.fields.name ?? "",
    );
    const isMail = folder !== DEMO_LAYOUT.calendar && folder !== DEMO_LAYOUT.contacts;
    // Only mail has a read flag: events and contacts get an edit instead.
    if (r < 0.5 && isMail) {
      server.markRead(target.sourcekey, !target.read);
      out.push({
        op: target.read ? "unread" : "read",
        sourcekey: target.sourcekey,
        folder,
        summary: title,
      });
    } else if (r < 0.7) {
      const edit = isMail ? { flagged: rnd() < 0.5 } : {};
      const fields = { ...target.fields, ...edit, editedAt: new Date().toISOString() };
      server.updateItem(target.sourcekey, fields);
      out.push({ op: "update", sourcekey: target.sourcekey, folder, summary: title });
    } else if (r < 0.85) {
      const archive = byName.get("Archive");
      if (archive && archive !== target.parentKey && isMail) {
        server.moveItem(target.sourcekey, archive);
        out.push({
          op: "move",
          sourcekey: target.sourcekey,
          folder: `${folder} -> Archive`,
          summary: title,
        });
      }
    } else {
      server.deleteItem(target.sourcekey, { soft: rnd() < 0.5 });
      out.push({ op: "delete", sourcekey: target.sourcekey, folder, summary: title });
    }
    items.splice(items.indexOf(target), 1);
  }
  return out;
}
