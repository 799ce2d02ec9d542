/**
 * A lock holder in a process of its own, for the contract suite's crash test:
 * `node holder.js <recipe-json> <key>` takes the lock, prints `held` and waits, renewing it,
 * until the suite kills it with SIGKILL (no release, no cleanup: the lock must expire).
 */
import { RedisLockManager } from '../redis/redis-lock.js';
import { S3LockManager } from '../s3/s3-lock.js';
import type { LockManager } from '../types.js';
import type { HolderRecipe } from './recipe.js';

function build(recipe: HolderRecipe): LockManager {
  switch (recipe.backend) {
    case 'redis':
      return new RedisLockManager(recipe.options);
    case 's3':
      return new S3LockManager(recipe.options);
  }
}

const [recipeJson, key] = process.argv.slice(2);
if (recipeJson === undefined || key === undefined) {
  process.stderr.write('usage: holder.js <recipe-json> <key>\n');
  process.exit(2);
}
const locks = build(JSON.parse(recipeJson) as HolderRecipe);
const keepAlive = setInterval(() => {}, 60_000);
try {
  await locks.withLocks([key], async (signal) => {
    process.stdout.write('held\n');
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  });
} catch (error) {
  process.stderr.write(`holder failed: ${String(error)}\n`);
  clearInterval(keepAlive);
  process.exit(1);
}
