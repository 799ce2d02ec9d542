import { describe, expect, it } from 'vitest';
import { argon2HashProblem } from '../src/index.js';
import { ARGON2D_HASH, ARGON2I_HASH, ARGON2ID_HASH, parseWith } from './helpers.js';

describe('Argon2 PHC hash check', () => {
  it.each([
    ARGON2ID_HASH,
    ARGON2I_HASH,
    ARGON2D_HASH,
    // No version field means v=16 (Argon2 1.0).
    '$argon2i$m=4096,t=3,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A',
    '$argon2id$v=16$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA',
  ])('accepts %s', (hash) => {
    expect(argon2HashProblem(hash)).toBeUndefined();
  });

  it.each([
    ['', 'expected a PHC string'],
    ['hunter2', 'expected a PHC string'],
    ['$argon2id$v=19$m=19456,t=2,p=1$...', 'expected a PHC string'],
    // The CLI reference's illustration: "randomsalt" decodes to 7 bytes, "hashvalue" is not base64.
    ['$argon2id$v=19$m=19456,t=2,p=1$randomsalt$hashvalue', 'salt must be at least 8 bytes'],
    ['$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$hashvalue', 'hash is not valid unpadded base64'],
    ['$argon2x$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo', 'expected a PHC string'],
    ['$bcrypt$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo', 'expected a PHC string'],
    ['argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo', 'expected a PHC string'],
    ['$argon2id$v=20$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo', 'unsupported version v=20'],
    ['$argon2id$v=19$m=19456,t=2$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo', 'parameters m, t and p are required'],
    ['$argon2id$v=19$m=19456,t=0,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo', 't (iterations) must be at least 1'],
    ['$argon2id$v=19$m=7,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo', 'm (memory KiB) must be at least 8 × p'],
    ['$argon2id$v=19$m=19456,t=2,p=0$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo', 'p (parallelism) must be between'],
    ['$argon2id$v=19$m=19456,t=2,p=1,x=3$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo', 'unknown parameter "x"'],
    ['$argon2id$v=19$m=19456,t=2,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo', 'duplicate parameter "t"'],
    [
      '$argon2id$v=19$m=01,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo',
      'parameter m must be a decimal integer',
    ],
    ['$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaGhhc2hoYXNo', 'salt must be at least 8 bytes'],
    [
      '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0==$aGFzaGhhc2hoYXNo',
      'salt is not valid unpadded base64',
    ],
    ['$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGE', 'hash must be at least 4 bytes'],
  ])('rejects %j (%s)', (hash, problem) => {
    expect(argon2HashProblem(hash)).toContain(problem);
  });

  it('accepts a real hash in [auth.identity.<name>]', () => {
    const { config } = parseWith(
      `[auth.identity.alice]\nusername = "alice"\npassword = "${ARGON2ID_HASH}"\n`,
    );
    expect(config.auth.identity.alice).toEqual({ username: 'alice', password: ARGON2ID_HASH });
  });
});
