#!/usr/bin/env bash
# Builds every BPF C source under bpf/ (except bpf/include) into
# bpf/build/<folder>/<name>.o with Debian's clang-19.
#
#   bash bpf/build.sh [clang]     (CLANG=... also works)
#
# Output is reproducible: the same sources and compiler give the same bytes
# (no absolute paths or timestamps in the objects).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
clang=${1:-${CLANG:-clang-19}}
if ! command -v "$clang" >/dev/null; then
  echo "bpf/build.sh: $clang not found (apt-get install clang-19)" >&2
  exit 1
fi

cd "$root"
out=bpf/build
mkdir -p "$out"
count=0
while IFS= read -r src; do
  rel=${src#bpf/}
  obj="$out/${rel%.c}.o"
  mkdir -p "$(dirname "$obj")"
  "$clang" -target bpf -g -O2 -Wall -Werror \
    -ffile-prefix-map="$root/"= -fdebug-compilation-dir=. \
    -Ibpf/include -c "$src" -o "$obj.tmp"
  mv "$obj.tmp" "$obj"
  count=$((count + 1))
done < <(find bpf -name '*.c' -not -path 'bpf/include/*' -not -path 'bpf/build/*' | LC_ALL=C sort)
echo "bpf/build.sh: built $count object(s) into $out with $("$clang" --version | head -1)"
