#!/usr/bin/env bash
# Installs a Node.js release line from the npm registry (the `node-linux-<arch>`
# package, which holds the official binary) into a tools folder, and prints
# the folder whose bin/ holds `node`. Nothing outside the tools folder is
# changed; a line already installed is reused.
#
#   bash scripts/install_node.sh 26            -> $DP_TOOLS/node-26
#
# DP_TOOLS defaults to ~/.cache/dp-tools. Needs any `npm` to bootstrap (the
# machine's own, even an old one).
set -euo pipefail
major=${1:?usage: install_node.sh MAJOR}
tools=${DP_TOOLS:-$HOME/.cache/dp-tools}
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "install_node.sh: no Node package for $(uname -m)" >&2; exit 1 ;;
esac
dir="$tools/node-$major"
bin="$dir/node_modules/node-linux-$arch/bin"
if [ ! -x "$bin/node" ] || [ "$("$bin/node" -p 'process.versions.node.split(".")[0]')" != "$major" ]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  npm install --silent --no-save --no-audit --no-fund --no-package-lock --prefix "$dir" "node-linux-$arch@$major" >&2
fi
mkdir -p "$dir/bin"
ln -sfn "$bin/node" "$dir/bin/node"
echo "$dir"
