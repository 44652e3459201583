/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): the top functions by self time, and the share
 * of total time spent under (inclusive) functions whose name matches a filter.
 * Usage: tsx bench/profile-summary.ts <file.cpuprofile> [top=25] [inclusive-filter-regexp]
 * With PROFILE_UNDER=<regexp>, only samples with a matching function on their stack count (e.g.
 * `^drain$`: the pusher's timed part, not the bench's setup).
 */
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg, filter] = process.argv.slice(2);
if (!file) throw new Error("usage: profile-summary <file.cpuprofile> [top] [filter]");
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const under = process.env.PROFILE_UNDER ? new RegExp(process.env.PROFILE_UNDER) : undefined;
const counted = (id: number) => {
  if (!under) return true;
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    if (under.test((byId.get(cur) as Node).callFrame.functionName)) return true;
  }
  return false;
};
const self = new Map<number, number>();
profile.samples.forEach((id, i) => {
  if (counted(id)) self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);
const label = (n: Node) => {
  const url = n.callFrame.url.replace(
    /^.*\/(node_modules\/[^/]+|src|bench|test|adapters)\//,
    "$1/",
  );
  return `${n.callFrame.functionName || "(anonymous)"} ${url}:${n.callFrame.lineNumber + 1}`;
};
const selfBy = new Map<string, number>();
for (const [id, us] of self) {
  const key = label(byId.get(id) as Node);
  selfBy.set(key, (selfBy.get(key) ?? 0) + us);
}
const pct = (us: number) => `${((100 * us) / total).toFixed(1)} %`;
console.log(`total ${(total / 1000).toFixed(0)} ms sampled`);
for (const [k, us] of [...selfBy].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 25))) {
  console.log(`${pct(us).padStart(7)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`);
}
if (filter) {
  // Inclusive time: a sample counts once for each matching frame name on its stack.
  const re = new RegExp(filter);
  const incl = new Map<string, number>();
  for (const [id, us] of self) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const name = (byId.get(cur) as Node).callFrame.functionName;
      if (re.test(name) && !seen.has(name)) {
        seen.add(name);
        incl.set(name, (incl.get(name) ?? 0) + us);
      }
    }
  }
  console.log(`\ninclusive, functions matching /${filter}/:`);
  for (const [k, us] of [...incl].sort((a, b) => b[1] - a[1])) {
    console.log(`${pct(us).padStart(7)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`);
  }
}
