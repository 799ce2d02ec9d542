export * from './digest.js';
export * from './errors.js';
export * from './manifest.js';
export * from './media-types.js';
export * from './names.js';
export * from './negotiate.js';
export * from './ranges.js';
export * from './routes.js';
