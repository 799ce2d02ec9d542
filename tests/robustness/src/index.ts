export { type CrashLoopOptions, type CrashLoopReport, crashLoop } from './crashloop.js';
