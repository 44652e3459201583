/**
 * What the CLI prints: human lines or NDJSON (`--json`), and a progress bar on a terminal.
 */
import cliProgress from "cli-progress";
import { redact } from "../orchestrator/redact.js";

export class Output {
  /**
   * @param json NDJSON events on stdout instead of human lines.
   * @param dataOnStdout stdout carries data (`--out -`): human lines go to stderr, so that
   *   `| jq` sees NDJSON only.
   */
  constructor(
    readonly json: boolean,
    readonly dataOnStdout = false,
  ) {}

  /** One NDJSON object (with `--json`) or one human line. */
  emit(event: Record<string, unknown>, human: string, options: { redact?: boolean } = {}): void {
    const clean = options.redact === false ? (t: string) => t : redact;
    if (this.json) process.stdout.write(`${clean(JSON.stringify(event))}\n`);
    else (this.dataOnStdout ? process.stderr : process.stdout).write(`${clean(human)}\n`);
  }

  /** A line on stderr (never with `--json`). */
  note(text: string): void {
    if (!this.json) process.stderr.write(`${redact(text)}\n`);
  }

  /** A progress bar on stderr when it is a terminal; a no-op otherwise. */
  progress(label: string, total: number): Progress {
    if (this.json || !process.stderr.isTTY) return { update() {}, stop() {} };
    const bar = new cliProgress.SingleBar(
      {
        format:
          total > 0
            ? `${label} [{bar}] {percentage}% | {value}/{total} changes | {batches} batches | {eta_formatted}`
            : `${label} {value} changes | {batches} batches | {duration_formatted}`,
        hideCursor: true,
        clearOnComplete: false,
        stream: process.stderr,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(Math.max(total, 1), 0, { batches: 0 });
    return {
      update(value, batches) {
        if (total > 0 && value > bar.getTotal()) bar.setTotal(value);
        bar.update(value, { batches });
      },
      stop() {
        bar.stop();
      },
    };
  }
}

export interface Progress {
  update(value: number, batches: number): void;
  stop(): void;
}
