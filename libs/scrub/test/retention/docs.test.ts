import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configOf } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import { checkRetentionConfig } from '../../src/index.js';

const REFERENCE = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  '..',
  'docs',
  'configuration.md',
);

/** The TOML examples of the reference that write retention rules. */
function retentionExamples(): string[] {
  const blocks = [...readFileSync(REFERENCE, 'utf8').matchAll(/```toml\n([\s\S]*?)```/g)].map(
    (match) => match[1]!,
  );
  return blocks.filter((block) => block.includes('retention_policy]'));
}

describe('the retention examples of docs/configuration.md', () => {
  it('compile', () => {
    const examples = retentionExamples();
    expect(examples.length).toBeGreaterThanOrEqual(4);
    for (const example of examples) expect(checkRetentionConfig(configOf(example))).toEqual([]);
  });
});
