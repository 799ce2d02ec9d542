export { linksCheck } from './links.js';
export { manifestsCheck } from './manifests.js';
export { mediaTypesCheck } from './media-types.js';
export { referrersCheck } from './referrers.js';
export { tagsCheck } from './tags.js';
export { tempFilesCheck } from './temp-files.js';
export { uploadsCheck } from './uploads.js';
