export { buildPullThroughCache, type PullThroughCacheServiceDeps, type Trust } from './app.js';
