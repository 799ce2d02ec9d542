import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface ContainersEnvOptions {
  /**
   * Registries (host or host:port) that podman, buildah and skopeo reach over plain HTTP.
   * Default: 127.0.0.1 and localhost; pass the exact host:port as well, since matching a bare
   * host against host:port is behaviour containers/image warns not to rely on.
   */
  insecureRegistries?: readonly string[];
}

/** TOML basic string: JSON's escaping is a valid subset for the characters paths contain. */
const tomlString = (value: string): string => JSON.stringify(value);

/**
 * Configuration for the containers/* tools (podman, buildah, skopeo) confined to `dir`: plain-HTTP
 * registries, vfs storage, network and temp directories, and an empty auth file, so nothing under
 * /etc, /run or /var/lib/containers/storage is read or written. Returns the complete environment
 * to run the tools with (this process's environment plus the variables that point at the files).
 */
export async function containersEnv(
  dir: string,
  options: ContainersEnvOptions = {},
): Promise<NodeJS.ProcessEnv> {
  const paths = {
    registries: join(dir, 'registries.conf'),
    storage: join(dir, 'storage.conf'),
    containers: join(dir, 'containers.conf'),
    auth: join(dir, 'auth.json'),
    runroot: join(dir, 'runroot'),
    graphroot: join(dir, 'graphroot'),
    networks: join(dir, 'networks'),
    tmp: join(dir, 'tmp'),
  };
  for (const sub of [paths.runroot, paths.graphroot, paths.networks, paths.tmp]) {
    await mkdir(sub, { recursive: true });
  }
  const insecure = options.insecureRegistries ?? [];
  const registries = [...new Set(['127.0.0.1', 'localhost', ...insecure])];
  await writeFile(
    paths.registries,
    [
      'unqualified-search-registries = []',
      ...registries.map((host) => `\n[[registry]]\nlocation = ${tomlString(host)}\ninsecure = true`),
      '',
    ].join('\n'),
  );
  await writeFile(
    paths.storage,
    [
      '[storage]',
      'driver = "vfs"',
      `runroot = ${tomlString(paths.runroot)}`,
      `graphroot = ${tomlString(paths.graphroot)}`,
      '',
    ].join('\n'),
  );
  await writeFile(
    paths.containers,
    [
      '[network]',
      `network_config_dir = ${tomlString(paths.networks)}`,
      '',
      '[engine]',
      `tmp_dir = ${tomlString(paths.tmp)}`,
      'events_logger = "file"',
      `events_logfile_path = ${tomlString(join(paths.tmp, 'events.log'))}`,
      'cgroup_manager = "cgroupfs"',
      '',
    ].join('\n'),
  );
  await writeFile(paths.auth, '{"auths":{}}\n');
  return {
    ...process.env,
    CONTAINERS_REGISTRIES_CONF: paths.registries,
    CONTAINERS_STORAGE_CONF: paths.storage,
    CONTAINERS_CONF: paths.containers,
    REGISTRY_AUTH_FILE: paths.auth,
    BUILDAH_ISOLATION: 'chroot',
    TMPDIR: paths.tmp,
  };
}
