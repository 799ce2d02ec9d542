// A serving thread of the link cache test: writes a tag through its own cache, sharing the
// main thread's version table, over the same fs directory.
import { parentPort, workerData } from 'node:worker_threads';
import { FsMetadataStore, LinkCacheVersions, withLinkCache } from '../dist/index.js';

const versions = new LinkCacheVersions(workerData.versions);
const store = withLinkCache(new FsMetadataStore(workerData.root, { syncToDisk: false }), 60, {
  lists: true,
  versions,
});
await store.put(workerData.path, 'new');
await store.put(workerData.added, 'added');
parentPort.postMessage('written');
