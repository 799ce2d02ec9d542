#!/usr/bin/env node
import { runCli } from './cli.js';

const status = await runCli(process.argv.slice(2));
process.exitCode = status;
// Let pending output flush, but never let a stray handle keep a finished command alive.
setTimeout(() => process.exit(status), 1000).unref();
