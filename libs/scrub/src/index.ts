export * from './retention/index.js';
