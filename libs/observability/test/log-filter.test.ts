import { describe, expect, it } from 'vitest';
import { isLevelEnabled, parseLogFilter, verbosityFor } from '../src/log-filter.js';

const OFF = 0;
const ERROR = 1;
const WARN = 2;
const INFO = 3;
const DEBUG = 4;
const TRACE = 5;

describe('parseLogFilter', () => {
  it.each([
    [undefined, INFO, [], []],
    ['', INFO, [], []],
    ['info', INFO, [], []],
    ['debug', DEBUG, [], []],
    ['TRACE', TRACE, [], []],
    ['off', OFF, [], []],
    ['angos=debug', INFO, [{ target: 'angos', verbosity: DEBUG }], []],
    ['angos::registry=debug', INFO, [{ target: 'angos::registry', verbosity: DEBUG }], []],
    ['warn,angos::registry=debug', WARN, [{ target: 'angos::registry', verbosity: DEBUG }], []],
    [' error , angos = trace ', ERROR, [{ target: 'angos', verbosity: TRACE }], []],
    ['angos', INFO, [{ target: 'angos', verbosity: TRACE }], []],
    ['angos=verbose,debug', DEBUG, [], ['angos=verbose']],
    ['=info', INFO, [], ['=info']],
    ['[span]=debug', INFO, [], ['[span]=debug']],
    ['angos=debug,angos=warn', INFO, [{ target: 'angos', verbosity: WARN }], []],
  ])('parses %j', (spec, defaultVerbosity, directives, invalid) => {
    const filter = parseLogFilter(spec);
    expect(filter.defaultVerbosity).toBe(defaultVerbosity);
    expect(filter.directives).toEqual(directives);
    expect(filter.invalid).toEqual(invalid);
  });

  it('sorts directives most specific first', () => {
    const filter = parseLogFilter('a=warn,a::b::c=trace,a::b=debug');
    expect(filter.directives.map((d) => d.target)).toEqual(['a::b::c', 'a::b', 'a']);
  });
});

describe('verbosityFor', () => {
  const filter = parseLogFilter('warn,angos=info,angos::registry=debug,angos::registry::upload=off');

  it.each([
    ['other', WARN],
    ['angos', INFO],
    ['angos::gateway', INFO],
    ['angos::registry', DEBUG],
    ['angos::registry::manifest', DEBUG],
    ['angos::registry::upload', OFF],
    ['angos::registry_api', INFO], // a longer name is not a sub-module
    ['angosx', WARN],
  ])('%s → %i', (target, verbosity) => {
    expect(verbosityFor(filter, target)).toBe(verbosity);
  });

  it('answers per level', () => {
    expect(isLevelEnabled(filter, 'angos::registry', 'debug')).toBe(true);
    expect(isLevelEnabled(filter, 'angos::registry', 'trace')).toBe(false);
    expect(isLevelEnabled(filter, 'angos::gateway', 'debug')).toBe(false);
    expect(isLevelEnabled(filter, 'angos::registry::upload', 'error')).toBe(false);
  });
});
