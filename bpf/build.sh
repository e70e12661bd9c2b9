#!/usr/bin/env bash
# Builds every BPF C source under bpf/ (except bpf/include) into
# bpf/build/<folder>/<name>.o, and every one under examples/ into
# bpf/build/examples/<example>/<name>.o, with Debian's clang-19.
#
#   bash bpf/build.sh [clang]     (CLANG=... also works)
#
# Include paths, in order: bpf/include (dp_bpf.h), bpf/build (vmlinux.h), and
# the system headers: libbpf's <bpf/bpf_helpers.h> and friends (Debian
# libbpf-dev) and the UAPI <linux/bpf.h> (linux-libc-dev, whose <asm/types.h>
# lives in the multiarch folder that clang -target bpf does not search).
#
# bpf/build/vmlinux.h is generated from the running kernel's BTF
# (/sys/kernel/btf/vmlinux, or VMLINUX_BTF=<file>) with bpftool when it is
# missing. Sources that include "vmlinux.h" (the CO-RE ones) are skipped with
# a message when there is no BTF to generate it from; the others still build.
#
# Output is reproducible: the same sources, headers and compiler give the same
# bytes (no absolute checkout paths or timestamps in the objects).
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

# vmlinux.h for CO-RE sources. bpftool's output holds only type definitions
# (no paths), so it is the same wherever the checkout lives.
vmlinux_btf=${VMLINUX_BTF:-/sys/kernel/btf/vmlinux}
have_vmlinux_h=0
if [ -s "$out/vmlinux.h" ]; then
  have_vmlinux_h=1
elif [ -r "$vmlinux_btf" ] && command -v bpftool >/dev/null; then
  bpftool btf dump file "$vmlinux_btf" format c >"$out/vmlinux.h.tmp"
  mv "$out/vmlinux.h.tmp" "$out/vmlinux.h"
  have_vmlinux_h=1
fi

includes=(-Ibpf/include -Ibpf/build)
multiarch=/usr/include/$(uname -m)-linux-gnu
[ -d "$multiarch" ] && includes+=(-idirafter "$multiarch")

count=0
skipped=()
while IFS= read -r src; do
  case $src in
    bpf/*) rel=${src#bpf/} ;;
    *) rel=$src ;;
  esac
  obj="$out/${rel%.c}.o"
  if [ "$have_vmlinux_h" = 0 ] && grep -q '^#include "vmlinux.h"' "$src"; then
    skipped+=("$src")
    continue
  fi
  mkdir -p "$(dirname "$obj")"
  "$clang" -target bpf -g -O2 -Wall -Werror \
    -ffile-prefix-map="$root/"= -fdebug-compilation-dir=. \
    "${includes[@]}" -c "$src" -o "$obj.tmp"
  mv "$obj.tmp" "$obj"
  count=$((count + 1))
done < <(
  {
    find bpf -name '*.c' -not -path 'bpf/include/*' -not -path 'bpf/build/*'
    if [ -d examples ]; then find examples -name '*.c'; fi
  } | LC_ALL=C sort
)
if [ "${#skipped[@]}" -gt 0 ]; then
  echo "bpf/build.sh: skipped ${#skipped[*]} CO-RE source(s) (no $vmlinux_btf or bpftool to generate vmlinux.h): ${skipped[*]}" >&2
fi
echo "bpf/build.sh: built $count object(s) into $out with $("$clang" --version | head -1)"
