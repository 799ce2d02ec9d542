/** Where progress goes: a terminal (stderr) or anything else, which gets nothing. */
export interface ProgressOutput {
  readonly isTTY?: boolean | undefined;
  write(text: string): unknown;
}

/** How often the progress line is redrawn. */
const REDRAW_MS = 250;

/**
 * The one-line progress of a run on a terminal: phase, keys walked, rate. Redrawn in place at
 * most every 250 ms; nothing at all when the output is not a terminal (a CronJob's log gets the
 * repair lines and the summary only).
 */
export class Progress {
  #phase = '';
  #walked = 0;
  #drawnAt = 0;
  #drawn = false;
  readonly #started: number;

  constructor(
    private readonly output: ProgressOutput | undefined,
    private readonly clock: () => number = Date.now,
  ) {
    this.#started = clock();
  }

  get walked(): number {
    return this.#walked;
  }

  phase(name: string): void {
    this.#phase = name;
    this.#draw(true);
  }

  add(count: number): void {
    this.#walked += count;
    this.#draw(false);
  }

  /** Clears the line before something else is written to the terminal, and at the end. */
  clear(): void {
    if (!this.#drawn || !this.output?.isTTY) return;
    this.output.write('\r\x1b[K');
    this.#drawn = false;
  }

  #draw(force: boolean): void {
    if (!this.output?.isTTY) return;
    const now = this.clock();
    if (!force && now - this.#drawnAt < REDRAW_MS) return;
    this.#drawnAt = now;
    const secs = Math.max((now - this.#started) / 1000, 0.001);
    const rate = Math.round(this.#walked / secs);
    this.output.write(`\r\x1b[Kscrub ${this.#phase}: ${this.#walked} keys walked, ${rate} keys/s`);
    this.#drawn = true;
  }
}
