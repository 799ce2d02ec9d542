export { buildRegistryApi, type RegistryApiDeps, type Trust } from './app.js';
