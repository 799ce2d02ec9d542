export { type CrashLoopOptions, type CrashLoopReport, crashLoop } from './crashloop.js';
export { type FuzzOptions, type FuzzReport, fuzz } from './fuzz.js';
