#!/usr/bin/env bash
# Make sure PostgreSQL server binaries (initdb, pg_ctl, postgres) are installed, then print the
# directory holding them. The test suite starts its own throwaway server from these binaries
# (tests/postgres.py): it never uses the cluster or service the Debian package may create, and
# leaves that one alone if the package started it.
#
# Idempotent: when /usr/lib/postgresql/*/bin/initdb already exists this only prints the bin dir.
# Otherwise it installs the Debian `postgresql` package non-interactively (needs root or sudo).
set -euo pipefail

find_bin_dir() {
  # Highest installed major version first (sort -V), so 16 wins over 15.
  local initdb
  initdb=$(ls -1 /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n "$initdb" && -x "$initdb" ]]; then
    dirname "$initdb"
  fi
}

bin_dir=$(find_bin_dir)
if [[ -z "$bin_dir" ]]; then
  if [[ $(id -u) -eq 0 ]]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo -n)
  else
    echo "ensure-postgres: PostgreSQL is not installed and this user cannot run apt-get" \
      "(not root, no sudo). Install the 'postgresql' package." >&2
    exit 1
  fi
  echo "ensure-postgres: installing the Debian 'postgresql' package..." >&2
  export DEBIAN_FRONTEND=noninteractive
  # apt's output goes to stderr so that stdout carries only the bin dir.
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends postgresql >&2
  bin_dir=$(find_bin_dir)
  if [[ -z "$bin_dir" ]]; then
    echo "ensure-postgres: installed 'postgresql' but found no /usr/lib/postgresql/*/bin/initdb" >&2
    exit 1
  fi
fi

for tool in initdb pg_ctl postgres; do
  if [[ ! -x "$bin_dir/$tool" ]]; then
    echo "ensure-postgres: $bin_dir/$tool is missing" >&2
    exit 1
  fi
done

echo "$bin_dir"
