/**
 * Keeps the last `limit` characters written to it, so a chatty process cannot exhaust memory while
 * its most recent output (what explains a failure) is kept.
 */
export class OutputTail {
  private chunks: string[] = [];
  private length = 0;
  private dropped = false;

  constructor(private readonly limit = 1024 * 1024) {}

  write(chunk: Buffer | string): void {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    this.chunks.push(text);
    this.length += text.length;
    while (this.length > this.limit && this.chunks.length > 1) {
      this.length -= this.chunks.shift()!.length;
      this.dropped = true;
    }
  }

  toString(): string {
    const text = this.chunks.join('');
    const tail = text.length > this.limit ? text.slice(text.length - this.limit) : text;
    return this.dropped || tail.length < text.length ? `[…earlier output dropped…]\n${tail}` : tail;
  }
}
