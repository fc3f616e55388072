/**
 * Progress of a job: a live line on a terminal, periodic plain lines otherwise, and a
 * summary at the end (items, failures with their errors, s/item).
 */

export interface ItemOutcome {
  name: string;
  ok: boolean;
  /** Error message when !ok. */
  error?: string;
  seconds: number;
  /** The result file written, when the job names it. */
  output?: string;
}

export interface Summary {
  total: number;
  done: number;
  failed: ItemOutcome[];
  skipped: number;
  seconds: number;
  /** The signal that stopped the job before the end, if any. */
  stoppedBy?: string;
}

function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 90) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export class Progress {
  private done = 0;
  private readonly failed: ItemOutcome[] = [];
  private readonly t0 = performance.now();
  private lastPrint = 0;
  private readonly tty: boolean;

  constructor(private readonly label: string, private readonly total: number, private readonly skipped: number,
    private readonly stream: NodeJS.WriteStream = process.stderr, private readonly quiet = false) {
    this.tty = Boolean(stream.isTTY) && !quiet;
  }

  /** Records one finished item and refreshes the display. */
  record(outcome: ItemOutcome): void {
    this.done++;
    if (!outcome.ok) {
      this.failed.push(outcome);
      this.clearLine();
      this.stream.write(`${this.label}: FAILED ${outcome.name}: ${outcome.error}\n`);
    }
    this.print(false);
  }

  private clearLine(): void {
    if (this.tty) this.stream.write('\r\x1b[K');
  }

  private line(): string {
    const elapsed = (performance.now() - this.t0) / 1000;
    const rate = this.done / Math.max(elapsed, 1e-9);
    const eta = (this.total - this.done) / rate;
    const fail = this.failed.length ? `, ${this.failed.length} failed` : '';
    return `${this.label}: ${this.done}/${this.total} done${fail}, ${rate.toFixed(2)} items/s, ` +
      `elapsed ${fmtDuration(elapsed)}, ETA ${this.done ? fmtDuration(eta) : '?'}`;
  }

  private print(force: boolean): void {
    if (this.quiet) return;
    const now = performance.now();
    if (this.tty) {
      if (force || now - this.lastPrint > 100) {
        this.stream.write(`\r\x1b[K${this.line()}`);
        this.lastPrint = now;
      }
      return;
    }
    // Plain logs: at most one line every 10 s, plus the last one.
    if (force || this.done === this.total || now - this.lastPrint > 10000) {
      this.stream.write(`${this.line()}\n`);
      this.lastPrint = now;
    }
  }

  /** Final line and summary; returns the figures. */
  finish(stoppedBy?: string): Summary {
    const seconds = (performance.now() - this.t0) / 1000;
    if (this.tty) this.stream.write('\n');
    const summary: Summary = { total: this.total, done: this.done, failed: this.failed, skipped: this.skipped, seconds,
      stoppedBy: stoppedBy && this.done < this.total ? stoppedBy : undefined };
    if (!this.quiet) this.stream.write(formatSummary(this.label, summary));
    return summary;
  }
}

function formatSummary(label: string, s: Summary): string {
  const ok = s.done - s.failed.length;
  const per = s.done ? ` (${(s.seconds / s.done).toFixed(3)} s/item)` : '';
  let out = `${label}: ${ok} computed, ${s.failed.length} failed, ${s.skipped} already done (skipped); ` +
    `${fmtDuration(s.seconds)}${per}\n`;
  for (const f of s.failed) out += `  failed: ${f.name}: ${f.error}\n`;
  if (s.stoppedBy) {
    out += `${label}: stopped by ${s.stoppedBy}: ${s.total - s.done} item(s) not started; ` +
      'run the same command again (--how complete) to finish the series\n';
  }
  return out;
}
