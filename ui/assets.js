import { fileURLToPath } from 'node:url';

/** The built single-page app (index.html and assets/), which registry-api serves when [ui] enabled. */
export const uiAssetsDirectory = fileURLToPath(new URL('./dist/', import.meta.url));
