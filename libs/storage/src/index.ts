export * from './keys.js';
export * from './types.js';
