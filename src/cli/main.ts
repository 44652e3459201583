#!/usr/bin/env node
/**
 * The `deltasync` command: `demo`, `sync <source>`, `watch <source>`, `sources`.
 * Errors are one line (a stack only with `--verbose`) and a non-zero exit code.
 */
import { Command, CommanderError, InvalidArgumentError } from "commander";
import { syncCommand, watchCommand } from "./commands.js";
import { demoCommand } from "./demo.js";
import { EXIT, exitCodeOf, formatError } from "./errors.js";
import { Output } from "./output.js";
import { listSources } from "./registry.js";

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("must be a positive integer");
  return n;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("must be a positive number");
  return n;
}

/** Aborts on Ctrl-C / SIGTERM (a second Ctrl-C exits at once) and after `duration` seconds. */
function stopSignal(duration: number | undefined): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(EXIT.interrupted);
    controller.abort(new Error("interrupted"));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const timer =
    duration !== undefined
      ? setTimeout(() => controller.abort(new Error("duration reached")), duration * 1000)
      : undefined;
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

function buildProgram(state: { verbose: boolean }): Command {
  const program = new Command("deltasync")
    .description("Incremental sync of mail, calendars and contacts into a local mirror")
    .option("--json", "print NDJSON events on stdout")
    .option("--verbose", "print stack traces on errors")
    .exitOverride()
    .configureOutput({ outputError: () => {} });
  program.hook("preAction", (cmd) => {
    state.verbose = Boolean(cmd.opts().verbose);
  });
  const out = () => new Output(Boolean(program.opts().json));

  program
    .command("demo")
    .description(
      "generate a mailbox/calendar/address book, mirror it into SQLite, then watch it change",
    )
    .option("--dir <path>", "where the server snapshot, states and mirror live", ".deltasync/demo")
    .option("--items <n>", "items to generate on the first run", positiveInt, 5000)
    .option(
      "--duration <s>",
      "stop after this many seconds (default: 10 when stdin is not a terminal)",
      positiveNumber,
    )
    .option("--rate <n>", "server changes per second while watching", positiveNumber, 4)
    .option("--poll <s>", "safety poll interval in seconds", positiveNumber, 5)
    .option("--batch-size <n>", "changes per batch", positiveInt, 500)
    .action(
      async (opts: {
        dir: string;
        items: number;
        duration?: number;
        rate: number;
        poll: number;
        batchSize: number;
      }) => {
        const duration = opts.duration ?? (process.stdin.isTTY ? undefined : 10);
        const stop = stopSignal(duration);
        try {
          await demoCommand(opts, out(), stop.signal);
        } finally {
          stop.dispose();
        }
      },
    );

  const sourceOptions = (cmd: Command) =>
    cmd
      .option(
        "--state <file>",
        "state file (.json, or .sqlite for SQLite); without it nothing is remembered",
      )
      .option("--out <target>", "a SQLite mirror file, or - for NDJSON changes on stdout")
      .option("--batch-size <n>", "changes per batch", positiveInt, 500)
      .option("--days-within <n>", "only the last N days (backends that support it)", positiveInt)
      .option("--time-min <iso>", "calendar window start (backends that support it)")
      .option("--time-max <iso>", "calendar window end (backends that support it)")
      .option("--password <secret>", "password (prefer the adapter's env var); never printed")
      .option("--token <secret>", "access token (prefer the adapter's env var); never printed");

  sourceOptions(
    program
      .command("sync <source>")
      .description("one full or incremental sync of a source URL (see `deltasync sources`)"),
  ).action(async (source: string, opts) => {
    const stop = stopSignal(undefined);
    try {
      await syncCommand(source, opts, out(), stop.signal);
    } finally {
      stop.dispose();
    }
  });

  sourceOptions(
    program
      .command("watch <source>")
      .description("keep a source in sync: push notifications plus a safety poll"),
  )
    .option("--poll <s>", "safety poll interval in seconds", positiveNumber, 60)
    .option("--duration <s>", "stop after this many seconds", positiveNumber)
    .action(async (source: string, opts) => {
      const stop = stopSignal(opts.duration);
      try {
        await watchCommand(source, opts, out(), stop.signal);
      } finally {
        stop.dispose();
      }
    });

  program
    .command("sources")
    .description("list the source URL forms of every adapter")
    .action(async () => {
      const o = out();
      for (const s of await listSources())
        o.emit({ event: "source", ...s }, `${s.adapter.padEnd(8)} ${s.usage}`, { redact: false });
    });
  return program;
}

/** Runs the CLI; resolves with the exit code. */
export async function main(argv: string[] = process.argv): Promise<number> {
  const state = { verbose: argv.includes("--verbose") };
  const program = buildProgram(state);
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return EXIT.ok; // --help, --version
      process.stderr.write(`deltasync: bad argument: ${error.message.replace(/^error: /, "")}\n`);
      return EXIT.usage;
    }
    process.stderr.write(`${formatError(error, state.verbose)}\n`);
    return exitCodeOf(error);
  }
}

const isEntry = (() => {
  const entry = process.argv[1] ?? "";
  return /(^|[\\/])(main\.(ts|js|cjs|mjs)|deltasync)$/.test(entry);
})();

if (isEntry) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`${formatError(error, false)}\n`);
      process.exitCode = 1;
    },
  );
}
