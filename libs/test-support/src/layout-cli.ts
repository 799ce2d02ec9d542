#!/usr/bin/env node
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { mkOci } from './oci-layout.js';

/**
 * `pnpm -s angos-layout DIR TAG [PLATFORM,...]`: writes a deterministic OCI image layout for
 * skopeo's `oci:DIR:TAG`, with no network and no image tools, and prints the tagged digest.
 */
const USAGE = `usage: angos-layout DIR TAG [PLATFORM[,PLATFORM...]] [options]
  Writes (or adds TAG to) a deterministic OCI image layout in DIR and prints the tagged digest.
  One platform (default linux/amd64) gives an image manifest, several an image index.
options:
  --seed TEXT        other content, hence other digests (default: seed)
  --fill-mb N        add an incompressible N MiB file to each layer
  --uncompressed     plain tar layers instead of gzip
  --docker           Docker v2 media types instead of OCI ones (for HTTP clients; skopeo reads
                     only OCI-typed layouts: push those with --format v2s2 to get Docker types)
example:
  pnpm -s angos-layout ./layout v1 linux/amd64,linux/arm64
  skopeo copy --dest-tls-verify=false oci:./layout:v1 docker://127.0.0.1:8000/demo/app:v1`;

function main(): Promise<void> | void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      seed: { type: 'string' },
      'fill-mb': { type: 'string' },
      uncompressed: { type: 'boolean' },
      docker: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const [dir, tag, platforms, ...extra] = positionals;
  if (!dir || !tag || extra.length > 0) throw new Error(USAGE);
  const fillMb = values['fill-mb'] === undefined ? undefined : Number(values['fill-mb']);
  if (fillMb !== undefined && !(Number.isInteger(fillMb) && fillMb >= 0)) {
    throw new Error(`--fill-mb takes a whole number of MiB, not ${values['fill-mb']}`);
  }
  // pnpm runs scripts in the repository root; a relative DIR means where the user typed it.
  const target = resolve(process.env['INIT_CWD'] ?? process.cwd(), dir);
  return mkOci(target, tag, platforms ? platforms.split(',') : undefined, {
    ...(values.seed !== undefined && { seed: values.seed }),
    ...(fillMb !== undefined && { fillMb }),
    ...(values.uncompressed && { compress: 'none' as const }),
    ...(values.docker && { mediaTypes: 'docker' as const }),
  }).then((digest) => console.log(digest));
}

try {
  await main();
} catch (error) {
  console.error(`angos-layout: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
