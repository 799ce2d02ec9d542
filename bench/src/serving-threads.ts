/**
 * `pnpm bench-threads`: what serving threads (`angos server --workers N`) buy on this machine,
 * beside CNCF distribution, with the load generator pinned to the last cores (taskset) so that it
 * does not compete with the server where the machine has cores to spare:
 *
 *   manifest GET by tag          wrk, 50 connections
 *   4 KiB blob GET               wrk, 50 connections
 *   1 GiB pull, 1 GiB push       one curl; a push is a POST and a PUT of the blob
 *   64 concurrent 16 MiB pulls   64 connections of curl processes at once; the seconds until all are done
 *   64 concurrent 16 MiB pushes  the same, each a POST and a PUT of the blob (as distribution needs)
 *
 * with the cores each subject kept busy (/proc) and its RSS before and after the load, the cores
 * the load generator used (near all of its pinned cores: the clients, not the server, set the
 * pace), the cores busy on the whole machine (near all of them: the machine is the floor), and the
 * floor of each transfer: the same bytes, as many at once, read (pulls) or written and hashed
 * (pushes) by coreutils without HTTP, on every core. Beside them, for each worker count, the Node
 * floor (node-floor.ts): a bare node:http server on as many threads, with the launcher's Node
 * flags, under the same load; what it keeps resident is what Node itself takes. Options:
 *   --workers 1,2        the angos worker counts to compare (default 1 and the machine's cores)
 *   --seconds 10         per scenario and subject
 *   --rounds 3           medians of
 *   --client-cores N     the load generator's cores, the last N (default a quarter, at least 1)
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { pushMonolithic, send } from './client.js';
import { coresUsedBy, generatorCoresDuring, machineCoresDuring } from './cpu.js';
import { totalRss } from './rss.js';
import { median } from './stats.js';
import { type Subject, startAngos, startDistribution, startNodeFloor } from './subjects.js';

const run = promisify(execFile);
const BLOB_BYTES = 16 * 1024 * 1024;
const LARGE_BYTES = 1024 * 1024 * 1024;
const CONCURRENT = 64;
const MIB = 1024 * 1024;

interface Scenario {
  readonly name: string;
  readonly unit: string;
  /** Higher is better. */
  readonly rate: boolean;
  measure(subject: Subject, seconds: number): Promise<number>;
  /** Transfers: seconds for the same bytes moved without HTTP (see FLOOR_SCRIPTS). */
  readonly floor?: () => Promise<number>;
}

/**
 * Where the load generator runs: the last `cores` cores of the machine (taskset), the server
 * unpinned. A quarter of the cores by default, one on a small machine: wrk runs a thread per core,
 * and the transfers a curl process per core.
 */
interface LoadGenerator {
  readonly cores: number;
  /** `taskset -c <its cores>`; empty on a machine of one core. */
  readonly pin: readonly string[];
  /** Its cores, as the report names them. */
  readonly label: string;
}

function loadGenerator(requested: number): LoadGenerator {
  const machine = availableParallelism();
  if (machine === 1) return { cores: 1, pin: [], label: 'the only core' };
  const cores = Math.max(1, Math.min(requested, machine - 1));
  const first = machine - cores;
  const list = cores === 1 ? `${first}` : `${first}-${machine - 1}`;
  return {
    cores,
    pin: ['taskset', '-c', list],
    label: `${cores === 1 ? 'core' : 'cores'} ${list} of ${machine}`,
  };
}

/** wrk on the load generator's cores, a thread each; its stdout. */
async function wrk(generator: LoadGenerator, args: readonly string[]): Promise<string> {
  const [command, ...rest] = [...generator.pin, 'wrk', `-t${generator.cores}`, ...args];
  const { stdout } = await run(command!, rest, { maxBuffer: 16 * MIB });
  return stdout;
}

/**
 * COUNT pulls at once from one curl process (`--parallel`, a connection each): GETs of the blob to
 * nowhere. One process for many transfers, because 64 curl processes spent more of their core
 * starting than receiving (0.9 of a core for 64 × 16 MiB, against ~0.2 for one). Arguments: URL,
 * COUNT, the process's number.
 */
const PULL_SCRIPT = `set -o pipefail
for i in $(seq "$2"); do printf 'url = "%s"\\noutput = "/dev/null"\\n' "$1"; done |
  curl -sSf --no-progress-meter --parallel --parallel-immediate --parallel-max "$2" -K -
`;
/**
 * COUNT pushes at once as distribution takes them too: a POST for each session (each push its own
 * repository) from one curl process, then a PUT of the whole blob with its digest for each,
 * streamed from the file (`upload-file`, as `-T`), from another. Arguments: base URL, blob
 * file, digest, COUNT, the process's number.
 */
const PUSH_SCRIPT = `set -e -o pipefail
locations=$(for i in $(seq "$4"); do
    printf 'url = "%s/v2/bench/push%s-%s-%s/blobs/uploads/"\\noutput = "/dev/null"\\n' "$1" "$$" "$5" "$i"
  done | curl -sSf --no-progress-meter --parallel --parallel-immediate --parallel-max "$4" \\
    -X POST -w '%header{location}\\n' -K -)
while read -r location; do
  case "$location" in http*) ;; *) location="$1$location" ;; esac
  case "$location" in *"?"*) sep='&' ;; *) sep='?' ;; esac
  printf 'url = "%s%sdigest=%s"\\nupload-file = "%s"\\noutput = "/dev/null"\\n' "$location" "$sep" "$3" "$2"
done <<<"$locations" |
  curl -sSf --no-progress-meter --parallel --parallel-immediate --parallel-max "$4" \\
    -X PUT -H 'content-type: application/octet-stream' -H 'Expect:' -K -
`;

/**
 * The floors: what the transfers cost without HTTP, each of the `count` runs one of these. A
 * push's server receives the bytes, writes them to a file and hashes them: `tee` into a new file
 * piped to `sha256sum`. A pull's server reads the stored file out of the page cache: `dd` of it
 * in 1 MiB reads. Arguments: the blob file, a scratch directory, the run's number.
 */
const FLOOR_SCRIPTS = {
  push: 'tee "$2/copy-$3" < "$1" | sha256sum > /dev/null\n',
  pull: 'dd if="$1" of=/dev/null bs=1M status=none\n',
};

/**
 * Seconds for `count` transfers at once, spread over a curl process per core of the load
 * generator (`script` with `args` and its share of `count`); a failed transfer fails the scenario.
 */
async function timed(
  generator: LoadGenerator,
  count: number,
  script: string,
  ...args: string[]
): Promise<number> {
  const processes = Math.min(count, generator.cores);
  if (count % processes !== 0)
    throw new Error(`${count} transfers do not divide among ${processes} processes`);
  return timedRuns(generator.pin, processes, script, [...args, String(count / processes)]);
}

/** Seconds for `count` runs of `script` at once, each given `args` and its number. */
async function timedRuns(
  prefix: readonly string[],
  count: number,
  script: string,
  args: readonly string[],
): Promise<number> {
  const started = performance.now();
  const each = ['bash', script, ...args].map((word) => `'${word}'`).join(' ');
  await run('bash', ['-c', `seq ${count} | ${prefix.join(' ')} xargs -P ${count} -I{} ${each} {}`], {
    maxBuffer: 16 * MIB,
  });
  return (performance.now() - started) / 1000;
}

/** Seconds for the floor of `count` transfers of `blobFile` at once, on every core, its copies removed after. */
async function floorOf(count: number, script: string, blobFile: string, dir: string): Promise<number> {
  const scratch = await mkdtemp(join(dir, 'floor-'));
  try {
    return await timedRuns([], count, script, [blobFile, scratch]);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

const requestsPerSecond = (out: string) => Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);

type BlobFile = { readonly path: string; readonly size: number; readonly digest: string };

async function fileOf(path: string, bytes: Buffer): Promise<BlobFile> {
  await writeFile(path, bytes);
  return { path, size: bytes.length, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
}

/** `size` random bytes written to `path` in 16 MiB pieces, hashed on the way. */
async function randomFile(path: string, size: number): Promise<BlobFile> {
  const hash = createHash('sha256');
  const handle = await open(path, 'w');
  try {
    for (let written = 0; written < size; ) {
      const piece = randomBytes(Math.min(BLOB_BYTES, size - written));
      hash.update(piece);
      await handle.write(piece);
      written += piece.length;
    }
  } finally {
    await handle.close();
  }
  return { path, size, digest: `sha256:${hash.digest('hex')}` };
}

/** The blobs the scenarios pull and push; the 16 MiB one in an image tagged `latest`. */
async function seed(subject: Subject, files: BlobFiles): Promise<void> {
  const { blob, config } = files;
  for (const file of [files.small, files.large, blob, config])
    await pushMonolithic(subject.url, 'bench/threads', file);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: config.digest,
      size: config.size,
    },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: blob.digest, size: blob.size }],
  });
  const put = await send(`${subject.url}/v2/bench/threads/manifests/latest`, 'PUT', {
    body: Buffer.from(manifest),
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  if (put.status !== 201) throw new Error(`${subject.name}: seeding the manifest answered ${put.status}`);
}

interface Scripts {
  readonly pull: string;
  readonly push: string;
  readonly floors: { readonly pull: string; readonly push: string };
}

interface BlobFiles {
  /** 4 KiB, 16 MiB, 1 GiB, and the image's config. */
  readonly small: BlobFile;
  readonly blob: BlobFile;
  readonly large: BlobFile;
  readonly config: BlobFile;
}

function scenarios(files: BlobFiles, dir: string, scripts: Scripts, generator: LoadGenerator): Scenario[] {
  const blobUrl = (subject: Subject, file: BlobFile) =>
    `${subject.url}/v2/bench/threads/blobs/${file.digest}`;
  const { blob, large } = files;
  return [
    {
      name: 'manifest GET by tag, 50 connections',
      unit: 'req/s',
      rate: true,
      measure: async (subject, seconds) =>
        requestsPerSecond(
          await wrk(generator, [
            '-c50',
            `-d${seconds}s`,
            '-H',
            'Accept: application/vnd.oci.image.manifest.v1+json',
            `${subject.url}/v2/bench/threads/manifests/latest`,
          ]),
        ),
    },
    {
      name: '4 KiB blob GET, 50 connections',
      unit: 'req/s',
      rate: true,
      measure: async (subject, seconds) =>
        requestsPerSecond(await wrk(generator, ['-c50', `-d${seconds}s`, blobUrl(subject, files.small)])),
    },
    {
      name: '1 GiB pull',
      unit: 's',
      rate: false,
      measure: (subject) => timed(generator, 1, scripts.pull, blobUrl(subject, large)),
      floor: () => floorOf(1, scripts.floors.pull, large.path, dir),
    },
    {
      name: '1 GiB push',
      unit: 's',
      rate: false,
      measure: (subject) => timed(generator, 1, scripts.push, subject.url, large.path, large.digest),
      floor: () => floorOf(1, scripts.floors.push, large.path, dir),
    },
    {
      name: `${CONCURRENT} concurrent 16 MiB pulls`,
      unit: 's',
      rate: false,
      measure: (subject) => timed(generator, CONCURRENT, scripts.pull, blobUrl(subject, blob)),
      floor: () => floorOf(CONCURRENT, scripts.floors.pull, blob.path, dir),
    },
    {
      name: `${CONCURRENT} concurrent 16 MiB pushes`,
      unit: 's',
      rate: false,
      measure: (subject) => timed(generator, CONCURRENT, scripts.push, subject.url, blob.path, blob.digest),
      floor: () => floorOf(CONCURRENT, scripts.floors.push, blob.path, dir),
    },
  ];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      workers: { type: 'string', default: `1,${availableParallelism()}` },
      seconds: { type: 'string', default: '10' },
      rounds: { type: 'string', default: '3' },
      'client-cores': {
        type: 'string',
        default: String(Math.max(1, Math.floor(availableParallelism() / 4))),
      },
    },
  });
  const generator = loadGenerator(Number(values['client-cores']));
  const counts = [...new Set(values.workers!.split(',').map(Number))];
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const dir = await mkdtemp(join(tmpdir(), 'bench-threads-'));
  const files: BlobFiles = {
    small: await randomFile(join(dir, 'small'), 4 * 1024),
    blob: await randomFile(join(dir, 'blob'), BLOB_BYTES),
    large: await randomFile(join(dir, 'large'), LARGE_BYTES),
    config: await fileOf(join(dir, 'config'), Buffer.from('{}')),
  };
  const scripts: Scripts = {
    pull: join(dir, 'pull.sh'),
    push: join(dir, 'push.sh'),
    floors: { pull: join(dir, 'floor-pull.sh'), push: join(dir, 'floor-push.sh') },
  };
  await writeFile(scripts.pull, PULL_SCRIPT);
  await writeFile(scripts.push, PUSH_SCRIPT);
  await writeFile(scripts.floors.pull, FLOOR_SCRIPTS.pull);
  await writeFile(scripts.floors.push, FLOOR_SCRIPTS.push);
  const list = scenarios(files, dir, scripts, generator);
  // The floors first, on a machine with nothing else running.
  const floors = new Map<string, number>();
  for (const scenario of list) {
    if (!scenario.floor) continue;
    const values: number[] = [];
    for (let round = 0; round < rounds; round++) values.push(await scenario.floor());
    floors.set(scenario.name, median(values));
    process.stderr.write(`floor: ${scenario.name}: ${values.map((v) => v.toFixed(2)).join(', ')}\n`);
  }
  const threads = (count: number) => `${count} worker${count === 1 ? '' : 's'}`;
  const angosLabel = (count: number) => `angos, ${threads(count)}`;
  const nodeFloorLabel = (count: number) => `Node floor, ${threads(count)}`;
  const subjects: Array<{ label: string; start: () => Promise<Subject> }> = [
    ...counts.map((count) => ({
      label: angosLabel(count),
      start: () => startAngos('fs', { workers: count }),
    })),
    // What a bare node:http server on as many threads takes under the same load (node-floor.ts).
    ...counts.map((count) => ({ label: nodeFloorLabel(count), start: () => startNodeFloor(count) })),
    { label: 'distribution', start: () => startDistribution() },
  ];
  const results = new Map<
    string,
    { values: number[]; cores: number[]; clientCores: number[]; machineCores: number[] }
  >();
  const idleRss = new Map<string, number>();
  const rss = new Map<string, number>();
  for (const { label, start } of subjects) {
    const subject = await start();
    try {
      await seed(subject, files);
      // Serving threads start after the first one answers: let them all listen.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      idleRss.set(label, (await totalRss(subject.pids)) / MIB);
      for (const scenario of list) {
        const entry = {
          values: [] as number[],
          cores: [] as number[],
          clientCores: [] as number[],
          machineCores: [] as number[],
        };
        for (let round = 0; round < rounds; round++) {
          const {
            result: { result: measured, cores: clientCores },
            cores: machineCores,
          } = await machineCoresDuring(() =>
            generatorCoresDuring(() => coresUsedBy(subject.pids, () => scenario.measure(subject, seconds))),
          );
          entry.values.push(measured.result);
          entry.cores.push(measured.cores);
          entry.clientCores.push(clientCores);
          entry.machineCores.push(machineCores);
        }
        results.set(`${label}|${scenario.name}`, entry);
        process.stderr.write(
          `${label}: ${scenario.name}: ${entry.values.map((v) => v.toFixed(scenario.rate ? 0 : 2)).join(', ')}\n`,
        );
      }
      rss.set(label, (await totalRss(subject.pids)) / MIB);
    } finally {
      await subject.stop();
    }
  }
  await rm(dir, { recursive: true, force: true });

  const labels = subjects.map((subject) => subject.label);
  const first = angosLabel(counts[0]!);
  const best = angosLabel(counts[counts.length - 1]!);
  const lines = [
    `| scenario | unit | ${labels.join(' | ')} | floor | ${best} / ${first} | ${best} / distribution | ${best} / floor |`,
    `| --- | --- | ${labels.map(() => '---').join(' | ')} | --- | --- | --- | --- |`,
  ];
  const cell = (label: string, scenario: Scenario) => results.get(`${label}|${scenario.name}`)!;
  for (const scenario of list) {
    const medians = labels.map((label) => median(cell(label, scenario).values));
    const cores = labels.map((label) => median(cell(label, scenario).cores));
    const ours = medians[labels.indexOf(best)]!;
    // How many times better: a higher rate, or a shorter time.
    const ratio = (a: number, b: number) => `${(scenario.rate ? a / b : b / a).toFixed(2)}×`;
    const floor = floors.get(scenario.name);
    const figures = medians.map(
      (value, i) => `${value.toFixed(scenario.rate ? 0 : 2)} (${cores[i]!.toFixed(2)})`,
    );
    lines.push(
      `| ${scenario.name} | ${scenario.unit} (cores) | ${figures.join(' | ')} | ${floor === undefined ? '' : floor.toFixed(2)} | ${ratio(ours, medians[0]!)} | ${ratio(ours, medians[labels.length - 1]!)} | ${floor === undefined ? '' : `${(ours / floor).toFixed(2)}× the floor`} |`,
    );
  }
  const rssLine = (name: string, of: Map<string, number>) =>
    `| ${name} | MiB | ${labels.map((label) => of.get(label)!.toFixed(0)).join(' | ')} | | ${(of.get(best)! / of.get(first)!).toFixed(2)}× | ${(of.get(best)! / of.get('distribution')!).toFixed(2)}× | |`;
  lines.push(rssLine('RSS at idle (seeded, before the load)', idleRss), rssLine('RSS after load', rss));
  const distributionRss = rss.get('distribution')!;
  const aboveNode = [
    '| workers | angos after load | Node floor after load | angos above the floor | Node floor / distribution |',
    '| --- | --- | --- | --- | --- |',
    ...counts.map((count) => {
      const ours = rss.get(angosLabel(count))!;
      const node = rss.get(nodeFloorLabel(count))!;
      return `| ${count} | ${ours.toFixed(0)} MiB | ${node.toFixed(0)} MiB | ${(ours - node).toFixed(0)} MiB | ${(node / distributionRss).toFixed(2)}× |`;
    }),
  ];
  const coresTable = (title: string, of: (label: string, scenario: Scenario) => number[]) => [
    `| ${title} | ${labels.join(' | ')} |`,
    `| --- | ${labels.map(() => '---').join(' | ')} |`,
    ...list.map(
      (scenario) =>
        `| ${scenario.name} | ${labels.map((label) => median(of(label, scenario)).toFixed(2)).join(' | ')} |`,
    ),
  ];
  const clients = coresTable(
    `cores of the load generator (${generator.label})`,
    (label, scenario) => cell(label, scenario).clientCores,
  );
  const machine = coresTable(
    `cores busy on the machine (of ${availableParallelism()})`,
    (label, scenario) => cell(label, scenario).machineCores,
  );
  process.stdout.write(
    `\n${lines.join('\n')}\n\n${aboveNode.join('\n')}\n\n${clients.join('\n')}\n\n${machine.join('\n')}\n`,
  );
  process.stdout.write(
    `\nwrk (a thread a core) and the curl clients (a process a core, each --parallel) pinned to ${generator.label}; ` +
      `${rounds} rounds of ${seconds} s, medians. ` +
      'Floor: the same bytes without HTTP on every core (tee into a file piped to sha256sum for a push, ' +
      `dd of the stored file for a pull), as many at once. A load generator near its ${generator.cores} ` +
      `core${generator.cores === 1 ? '' : 's'} set the pace; a machine near all its cores busy is the floor itself.\n`,
  );
}

await main();
