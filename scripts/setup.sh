#!/usr/bin/env bash
# Installs what dp needs on a Debian 12 machine and is missing, and prints
# the folder whose bin/ holds the Node it installed (the current LTS):
#
#   - the Debian packages (clang-19 for bpf/, bpftool, iproute2, the traffic
#     tools the demo uses; with --ci also what the checks and tests use:
#     clang-format, zsh, podman and the standard CNI plugins, ...), with apt-get;
#   - Node from the npm registry into ~/.cache/dp-tools (scripts/install_node.sh);
#   - the npm dependencies (`npm ci`, when node_modules is missing or older
#     than package-lock.json; always with --ci);
#   - the BPF objects (bpf/build.sh, when an object is missing or older than
#     the C sources);
#   - with --build, the packages' JavaScript (`npm run build`, when a source
#     is newer than the build), which `dp` runs when it is there.
#
#   bash scripts/setup.sh [--ci] [--build] [--quiet]
#
# It is safe to run again: what is there is left alone. Progress goes to
# stderr, the Node folder to stdout.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

CURRENT_LTS=26
# What dp and its demo need, and (with --ci) what the checks and tests use too.
PACKAGES=(clang-19 llvm-19 libbpf-dev linux-libc-dev bpftool iproute2 iputils-ping iperf3 sockperf curl)
CI_PACKAGES=(clang-format-19 strace util-linux zsh containernetworking-plugins podman busybox-static etcd-server)

ci=0 build=0 quiet=0
for arg in "$@"; do
  case "$arg" in
    --ci) ci=1 ;;
    --build) build=1 ;;
    --quiet) quiet=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
say() { [ "$quiet" = 1 ] || echo "setup: $*" >&2; }

if [ "$ci" = 1 ]; then PACKAGES+=("${CI_PACKAGES[@]}"); fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages ${missing[*]}: run as root, or apt-get install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]} (apt-get)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

node_dir=$(bash scripts/install_node.sh "$CURRENT_LTS")
export PATH="$node_dir/bin:$PATH"
say "node $(node --version), npm $(npm --version)"

if [ "$ci" = 1 ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-fund --no-audit --loglevel=error >&2
fi

if [ ! -f bpf/build/datapath/from_container.o ] || [ -n "$(find bpf examples \( -name '*.c' -o -name '*.h' \) -not -path 'bpf/build/*' -newer bpf/build/datapath/from_container.o -print -quit)" ]; then
  echo "setup: building bpf/" >&2
  bash bpf/build.sh >&2
fi

if [ "$build" = 1 ]; then
  stamp=packages/agent/dist/cli.js
  if [ ! -f "$stamp" ] || [ -n "$(find packages/*/src packages/*/package.json -newer "$stamp" -print -quit)" ]; then
    echo "setup: building the packages (npm run build)" >&2
    npm run build --silent >/dev/null
  fi
fi

echo "$node_dir"
