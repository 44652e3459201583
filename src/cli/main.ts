#!/usr/bin/env node
/**
 * The `deltasync` command: `demo`, `sync <source>`, `watch <source>`, `push <source>`,
 * `conflicts list|resolve`, `sources`, and for a worker fleet `accounts add|list|remove`, `worker`.
 * Errors are one line (a stack only with `--verbose`) and a non-zero exit code.
 */
import { Argument, Command, CommanderError, Option } from "commander";
import { accountsCommand } from "./accounts.js";
import { syncCommand, watchCommand } from "./commands.js";
import { demoCommand } from "./demo.js";
import { EXIT, exitCodeOf, formatError } from "./errors.js";
import { Output } from "./output.js";
import { positiveInt, positiveNumber } from "./parse.js";
import { listSources, packageVersion } from "./registry.js";
import { conflictsList, conflictsResolve, POLICIES, pushCommand } from "./two-way.js";
import { workerCommand } from "./worker.js";

/** How a command was stopped: by a signal (exit 128 + its number) or by `--duration`. */
export interface StopSignal {
  signal: AbortSignal;
  /** 130 after Ctrl-C (SIGINT), 143 after SIGTERM, undefined otherwise. */
  readonly signalExitCode: number | undefined;
  dispose(): void;
}

/**
 * Aborts on Ctrl-C / SIGTERM and after `duration` seconds. A second Ctrl-C exits at once, and
 * with `graceMs` so does the first when the command has not stopped by then: an adapter stuck in
 * a call that ignores the signal (a connect, a TLS handshake) must not hold the terminal. Exiting
 * is safe at any point, because states are saved atomically and only after the importer confirmed.
 */
function stopSignal(duration: number | undefined, graceMs?: number): StopSignal {
  const controller = new AbortController();
  let signalExitCode: number | undefined;
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted && signalExitCode !== undefined) process.exit(signalExitCode);
    signalExitCode = name === "SIGTERM" ? EXIT.terminated : EXIT.interrupted;
    controller.abort(new Error("interrupted"));
    if (graceMs !== undefined) {
      const code = signalExitCode;
      setTimeout(() => {
        process.stderr.write("deltasync: interrupted (the source did not stop in time)\n");
        process.exit(code);
      }, graceMs).unref();
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const timer =
    duration !== undefined
      ? setTimeout(() => controller.abort(new Error("duration reached")), duration * 1000)
      : undefined;
  return {
    signal: controller.signal,
    get signalExitCode() {
      return signalExitCode;
    },
    dispose() {
      clearTimeout(timer);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

/** How long the first Ctrl-C waits for `sync` / `watch` to wind down before exiting anyway. */
const GRACE_MS = 2000;

/** Runs a command under a stop signal; a signal makes the exit code 130/143 whatever happened. */
async function stoppable(
  state: CliState,
  stop: StopSignal,
  run: (signal: AbortSignal) => Promise<void>,
): Promise<void> {
  try {
    await run(stop.signal);
  } catch (error) {
    if (stop.signalExitCode === undefined) throw error;
  } finally {
    stop.dispose();
  }
  if (stop.signalExitCode !== undefined) {
    state.exitCode = stop.signalExitCode;
    process.stderr.write("deltasync: interrupted\n");
  }
}

interface CliState {
  verbose: boolean;
  exitCode?: number;
}

function buildProgram(state: CliState): Command {
  const program = new Command("deltasync")
    .description("Incremental sync of mail, calendars and contacts into a local mirror")
    .option("--json", "print NDJSON events on stdout")
    .option("--verbose", "print stack traces on errors")
    .version(packageVersion(), "-V, --version", "print the version")
    .exitOverride()
    .configureOutput({ outputError: () => {} });
  program.hook("preAction", (cmd) => {
    state.verbose = Boolean(cmd.opts().verbose);
  });
  const out = (dataOnStdout = false) => new Output(Boolean(program.opts().json), dataOnStdout);

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
        // No grace timer: the demo's source is in-process, and it catches up before exiting.
        await stoppable(state, stopSignal(duration), (signal) => demoCommand(opts, out(), signal));
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
      .option(
        "--token <secret>",
        "OAuth access token (prefer the adapter's env var); never printed",
      );

  sourceOptions(
    program
      .command("sync <source>")
      .description("one full or incremental sync of a source URL (see `deltasync sources`)"),
  )
    .option(
      "--confirm-mass-change",
      "apply deletes that would remove more than half of the mirror (paused otherwise, exit 6)",
    )
    .action(async (source: string, opts) => {
      await stoppable(state, stopSignal(undefined, GRACE_MS), (signal) =>
        syncCommand(source, opts, out(opts.out === "-"), signal),
      );
    });

  sourceOptions(
    program
      .command("watch <source>")
      .description("keep a source in sync: push notifications plus a safety poll"),
  )
    .option("--poll <s>", "safety poll interval in seconds", positiveNumber, 60)
    .option("--duration <s>", "stop after this many seconds", positiveNumber)
    .action(async (source: string, opts) => {
      await stoppable(state, stopSignal(opts.duration, GRACE_MS), (signal) =>
        watchCommand(source, opts, out(opts.out === "-"), signal),
      );
    });

  accountsCommand(program, out);
  workerCommand(program);

  program
    .command("push <source>")
    .description(
      "push the local edits waiting in a SQLite mirror's outbox to the source (one folder, calendar or address book)",
    )
    .option("--out <mirror>", "the SQLite mirror file holding the local edits (as for sync --out)")
    .addOption(
      new Option("--policy <policy>", "what to do on a conflict").choices(POLICIES).default("ask"),
    )
    .option(
      "--confirm-mass-change",
      "apply pending deletes that would remove more than half of the collection (paused otherwise, exit 6)",
    )
    .option("--password <secret>", "password (prefer the adapter's env var); never printed")
    .option("--token <secret>", "OAuth access token (prefer the adapter's env var); never printed")
    .action(async (source: string, opts) => {
      await stoppable(state, stopSignal(undefined, GRACE_MS), async (signal) => {
        const code = await pushCommand(source, opts, out(), signal);
        if (code !== EXIT.ok) state.exitCode = code;
      });
    });

  const conflicts = program
    .command("conflicts")
    .description("list or resolve the conflicts that pause a mirror's pushes");
  conflicts
    .command("list")
    .description("open conflicts (with --all, resolved ones too)")
    .option("--mirror <file>", "the SQLite mirror file")
    .option("--source <key>", "only this source (the mirror's source key)")
    .option("--all", "resolved conflicts too")
    .action(async (opts) => {
      await conflictsList(opts, out());
    });
  conflicts
    .command("resolve")
    .description("decide a conflict; the next push carries it out")
    .argument("<id>", "the conflict id, as `conflicts list` prints it")
    .addArgument(
      new Argument("<resolution>", "local: write your version; remote: take the server's").choices([
        "local",
        "remote",
      ]),
    )
    .option("--mirror <file>", "the SQLite mirror file")
    .action(async (id: string, resolution: "local" | "remote", opts) => {
      await conflictsResolve(id, resolution, opts, out());
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
  const state: CliState = { verbose: argv.includes("--verbose") };
  const program = buildProgram(state);
  try {
    await program.parseAsync(argv);
    return state.exitCode ?? EXIT.ok;
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
