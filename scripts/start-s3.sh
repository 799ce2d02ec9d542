#!/usr/bin/env bash
# A throw-away Ceph RGW (a real S3 server) on 127.0.0.1 for trying Angos on S3:
#   scripts/start-s3.sh [PORT]        start it (default 5300; Ceph also uses PORT+1..PORT+9) and
#                                     print S3_ENDPOINT=… S3_ACCESS_KEY=… lines; exit 1 on failure
#   scripts/start-s3.sh stop [PORT]   stop it and delete its data
# Needs Debian's Ceph packages (apt-get install radosgw ceph-mon ceph-osd ceph-common) and the
# built workspace (pnpm install && pnpm build); the code is @angos/test-support's, which the tests
# use too.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cli="$root/libs/test-support/dist/s3-cli.js"
if [ ! -f "$cli" ]; then
  echo "start-s3: $cli not built; run: pnpm install && pnpm build" >&2
  exit 1
fi
exec node "$cli" "$@"
