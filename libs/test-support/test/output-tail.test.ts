import { describe, expect, it } from 'vitest';
import { OutputTail } from '../src/output-tail.js';

describe('OutputTail', () => {
  it('keeps everything below the limit', () => {
    const tail = new OutputTail(100);
    tail.write('a\n');
    tail.write(Buffer.from('b\n'));
    expect(tail.toString()).toBe('a\nb\n');
  });

  it('keeps only the most recent output above the limit and says so', () => {
    const tail = new OutputTail(10);
    for (let i = 0; i < 100; i++) tail.write(`line ${i}\n`);
    const text = tail.toString();
    expect(text).toMatch(/^\[…earlier output dropped…\]\n/);
    expect(text.endsWith('line 99\n')).toBe(true);
    expect(text).not.toContain('line 1\n');
  });
});
