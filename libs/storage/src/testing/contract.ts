/**
 * The storage contract suites (`@angos/storage/contract`): every backend's test
 * file runs them against the real backend (STYLE.md #1). Needs vitest.
 */
export { describeBlobStoreContract } from './blob-contract.js';
export type { StoreFactory, StoreUnderTest } from './harness.js';
export { describeLegacyLayoutContract, type LayoutUnderTest } from './legacy-layout-contract.js';
export { describeMetadataStoreContract } from './metadata-contract.js';
