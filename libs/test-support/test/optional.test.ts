import { afterEach, describe, expect, it, vi } from 'vitest';
import { inCi, installCommand, missingPrograms, requirePrograms, skipWithout } from '../src/optional.js';

const MISSING = 'angos-no-such-program';

describe('optional servers and clients', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
  });

  it('names the Debian packages to install, each once', () => {
    expect(installCommand(['redis-cli', 'radosgw', 'radosgw-admin', 'skopeo'])).toBe(
      'apt-get install redis-tools radosgw skopeo',
    );
  });

  it('finds what is missing from PATH', () => {
    expect(missingPrograms(['sh', MISSING])).toEqual([MISSING]);
  });

  it('skips with a warning naming the install command outside CI', () => {
    vi.stubEnv('CI', '');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    expect(inCi()).toBe(false);
    expect(skipWithout('the redis tests', 'sh', MISSING)).toBe(true);
    expect(warn).toHaveBeenCalledWith(expect.stringContaining(`apt-get install ${MISSING}`));
    expect(skipWithout('the sh tests', 'sh')).toBe(false);
  });

  it('does not skip under CI, where the set-up fails naming the install command', () => {
    vi.stubEnv('CI', 'true');
    expect(skipWithout('the skopeo tests', MISSING)).toBe(false);
    expect(() => requirePrograms('sh', MISSING)).toThrow(
      `${MISSING} not installed (apt-get install ${MISSING})`,
    );
  });

  it('reads CI=false and CI=0 as not CI', () => {
    for (const value of ['false', '0', 'FALSE']) {
      vi.stubEnv('CI', value);
      expect(inCi()).toBe(false);
    }
  });
});
