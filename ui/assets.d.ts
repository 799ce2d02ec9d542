/** The built single-page app (index.html and assets/), which registry-api serves when [ui] enabled. */
export declare const uiAssetsDirectory: string;
