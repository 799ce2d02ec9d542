#!/usr/bin/env bash
# `pnpm bench`: installs what the benchmark drives when missing (wrk, ApacheBench, skopeo, CNCF
# distribution as Debian's docker-registry, Ceph RGW for the S3 subject, redis-server for the split
# pull-through cache, Chromium for the web UI), builds the workspace, and runs bench/ with the
# arguments given (--rounds N, --subjects angos,angos-split,angos-s3,distribution,distribution-s3,
# --only TEXT[,TEXT…], --quick, --jobs N, --cache-clients N, --event-pushes N, --web-ui-loads N,
# --scale-walk-limit S).
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
apt_install() { # command:package pairs; installs the packages of the commands that are missing
  local options=("$1") missing=() pair
  shift
  for pair in "$@"; do command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}"); done
  [ ${#missing[@]} -eq 0 ] && return
  [ -n "${apt_updated:-}" ] || { "${sudo[@]}" apt-get update -qq; apt_updated=1; }
  # shellcheck disable=SC2086 # options is one word or empty
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq $options "${missing[@]}" >/dev/null
}
apt_install "" wrk:wrk ab:apache2-utils skopeo:skopeo docker-registry:docker-registry redis-server:redis-server chromium:chromium
# The same Ceph packages .ci/run installs for the S3 tests (libs/test-support/src/rgw.ts).
apt_install --no-install-recommends radosgw:radosgw ceph-mon:ceph-mon ceph-osd:ceph-osd ceph:ceph-common
pnpm build >/dev/null
exec node bench/dist/main.js "$@"
