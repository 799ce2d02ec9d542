/**
 * Lua scripts Redis runs atomically over every key of one `withLocks` call. KEYS are the lock
 * keys, ARGV[1] the owner's token: a key that expired under its owner and was taken by someone
 * else is never extended or deleted by the former owner.
 */

/** Compare-and-pexpire: extends the keys holding our token by ARGV[2] ms; returns the others. */
export const RENEW_SCRIPT = `
local lost = {}
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  else
    table.insert(lost, key)
  end
end
return lost`;

/** Compare-and-delete: deletes the keys holding our token; returns how many it deleted. */
export const RELEASE_SCRIPT = `
local released = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    released = released + 1
  end
end
return released`;
