#!/usr/bin/env bash
# Builds the Angos container image with buildah, from scratch, without a Docker daemon
# (docs/container-image.md). Needs `pnpm build` first (`pnpm image` does both).
#
#   scripts/build-image.sh [IMAGE]      default IMAGE: localhost/angos/angos:<version>
#
# Two layers:
#   runtime  Node.js 24 (the `node` binary of the npm registry's `node` package, unmodified) and
#            the shared libraries it and the Argon2 binding link against (glibc, libstdc++,
#            libgcc_s, copied from this machine: `ldd`), CA certificates, /etc/passwd and
#            /etc/group with the user 65532, /var/lib/angos (owned by it) and /tmp.
#   app      /usr/local/lib/angos: the CLI bundled into an entry and its chunks
#            (scripts/image/bundle.mjs), the web UI, the Argon2 and CEL packages;
#            /usr/local/bin/angos, the entrypoint.
# Reproducible: every file's time is SOURCE_DATE_EPOCH (default: the commit time of HEAD), tar
# entries are sorted with numeric owners, the image's created time is the same epoch, no history
# and no builder label. The same checkout, node binary and buildah give the same image ID.
#
# Prints the compressed size (the sum of the gzip-compressed layers a push sends) and fails when
# it is over ANGOS_IMAGE_MAX_MIB (80). Environment:
#   ANGOS_NODE_DIR            where the `node` package is installed (scripts/node-env.sh)
#   ANGOS_IMAGE_REVISION      the revision recorded in the image (default: git rev-parse --short HEAD)
#   ANGOS_IMAGE_SOURCE        org.opencontainers.image.source (default: the project's repository)
#   ANGOS_IMAGE_REPORT        a file to write {image, id, revision, compressedBytes, layers} to, as JSON
#   CONTAINERS_STORAGE_CONF and friends choose buildah's image store, as for any buildah command.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

for tool in buildah skopeo tar ldd jq; do
  command -v "$tool" >/dev/null || { echo "build-image.sh: $tool is required" >&2; exit 1; }
done
[ -f services/cli/dist/main.js ] && [ -f ui/dist/index.html ] ||
  { echo "build-image.sh: build the workspace first (pnpm build)" >&2; exit 1; }

version=$(jq -r .version services/cli/package.json)
image="${1:-localhost/angos/angos:$version}"
revision="${ANGOS_IMAGE_REVISION:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
max_mib="${ANGOS_IMAGE_MAX_MIB:-80}"
source="${ANGOS_IMAGE_SOURCE:-https://github.com/project-angos/angos}"
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

# Node.js 24 from the npm registry's `node` package, the one scripts/node-env.sh installs: the
# official Linux build (dynamically linked against glibc; the package offers no static variant).
node_dir="${ANGOS_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/angos/node24}"
node_bin="$node_dir/node_modules/node/bin/node"
if ! "$node_bin" --version 2>/dev/null | grep -q '^v24\.'; then
  echo "build-image.sh: fetching Node.js 24 (npm package node@24) into $node_dir" >&2
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-save --no-audit --no-fund --loglevel=error node@24 >&2
fi
node_version=$("$node_bin" --version)
# The machine's architecture is the image's: Node's name for it (x64, arm64) names the npm
# packages of the runtime and the Argon2 binding, the OCI name (amd64, arm64) the image.
node_arch=$("$node_bin" -p process.arch)
case "$node_arch" in
  x64) oci_arch=amd64 ;;
  arm64) oci_arch=arm64 ;;
  *) echo "build-image.sh: unsupported architecture $node_arch" >&2; exit 1 ;;
esac

work=$(mktemp -d)
container=''
cleanup() {
  [ -z "$container" ] || buildah rm "$container" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
runtime="$work/runtime" app="$work/app"

# --- app layer -------------------------------------------------------------------------------
"$node_bin" scripts/image/bundle.mjs "$app/usr/local/lib/angos" "$revision"
cp LICENSE "$app/usr/local/lib/angos/LICENSE"
mkdir -p "$app/usr/local/bin"
install -m 0755 scripts/image/angos "$app/usr/local/bin/angos" # the entrypoint, no shell needed

# --- runtime layer ---------------------------------------------------------------------------
mkdir -p "$runtime/usr/local/bin" "$runtime/usr/local/share/doc/node" "$runtime/etc/ssl/certs" \
  "$runtime/etc/angos" "$runtime/var/lib/angos" "$runtime/tmp"
cp "$node_bin" "$runtime/usr/local/bin/node"
cp "$node_dir/node_modules/node/node_modules/node-linux-$node_arch/LICENSE" "$runtime/usr/local/share/doc/node/LICENSE"
# Every shared library node and the Argon2 binding load, at the path the loader looks for it.
for elf in "$node_bin" "$app"/usr/local/lib/angos/node_modules/@node-rs/*/*.node; do
  ldd "$elf" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
done | sort -u | while read -r lib; do
  mkdir -p "$runtime$(dirname "$lib")"
  cp -L "$lib" "$runtime$lib"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$runtime/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nangos:x:65532:65532:angos:/var/lib/angos:/sbin/nologin\n' \
  >"$runtime/etc/passwd"
printf 'root:x:0:\nangos:x:65532:\n' >"$runtime/etc/group"
printf 'hosts: files dns\n' >"$runtime/etc/nsswitch.conf"
chmod 1777 "$runtime/tmp"

# Sorted entries, one time, numeric owners root, no atime/ctime: the same tree, the same bytes.
pack() { # pack DIR TAR [PATH...]: PATHs of DIR (default: all) into TAR, owned by $owner
  local dir=$1 out=$2
  shift 2
  tar -C "$dir" --append -f "$out" --sort=name --mtime="@$epoch" --owner="$owner" --group="$owner" \
    --numeric-owner --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    "${@:-.}"
}
owner=0 pack "$runtime" "$work/runtime.tar" --exclude=./var/lib/angos .
owner=65532 pack "$runtime" "$work/runtime.tar" ./var/lib/angos
owner=0 pack "$app" "$work/app.tar" .

# --- image -----------------------------------------------------------------------------------
commit() { # commit IMAGE: the working container as IMAGE, at the fixed time
  buildah commit -q --timestamp "$epoch" --identity-label=false --omit-history --format oci \
    "$container" "$1"
}
base="$image-runtime-build"
container=$(buildah from scratch)
buildah add -q "$container" "$work/runtime.tar" / >/dev/null
commit "$base" >/dev/null
buildah rm "$container" >/dev/null
container=$(buildah from --pull-never "$base")
buildah add -q "$container" "$work/app.tar" / >/dev/null
buildah config \
  --entrypoint '["/usr/local/bin/angos"]' --cmd '["server"]' \
  --user 65532:65532 --workingdir /var/lib/angos \
  --env NODE_ENV=production --env PATH=/usr/local/bin \
  --port 8000 --os linux --arch "$oci_arch" \
  --label "org.opencontainers.image.title=angos" \
  --label "org.opencontainers.image.description=Angos, an OCI Distribution registry: every service (server, gateway, registry-api, pull-through-cache, worker, scrub) by its subcommand" \
  --label "org.opencontainers.image.source=$source" \
  --label "org.opencontainers.image.licenses=Apache-2.0" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.revision=$revision" \
  --label "org.opencontainers.image.created=$created" \
  --label "io.angos.image.node-version=$node_version" \
  "$container"
id=$(commit "$image")
buildah rm "$container" >/dev/null
container=''
buildah rmi "$base" >/dev/null 2>&1 || true

# --- compressed size: what a push sends ------------------------------------------------------
buildah push -q --compression-format gzip "$image" "oci:$work/oci:image" >/dev/null
manifest=$(jq -r '.manifests[0].digest | sub(":"; "/")' "$work/oci/index.json")
layers=$(jq -c '[.layers[].size]' "$work/oci/blobs/$manifest")
bytes=$(jq '[.layers[].size] | add' "$work/oci/blobs/$manifest")
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "build-image.sh: $image (id ${id:0:12}, node $node_version, revision $revision)"
echo "build-image.sh: compressed size $mib MiB ($bytes bytes; layers $layers), limit $max_mib MiB"
if [ -n "${ANGOS_IMAGE_REPORT:-}" ]; then
  jq -n --arg image "$image" --arg id "$id" --argjson bytes "$bytes" --argjson layers "$layers" \
    --arg revision "$revision" \
    '{image: $image, id: $id, revision: $revision, compressedBytes: $bytes, layers: $layers}' >"$ANGOS_IMAGE_REPORT"
fi
if [ "$bytes" -gt $((max_mib * 1048576)) ]; then
  echo "build-image.sh: the image is over $max_mib MiB compressed" >&2
  exit 1
fi
