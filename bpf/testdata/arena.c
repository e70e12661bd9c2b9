// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* BPF arenas (BPF_MAP_TYPE_ARENA, Linux 6.9): memory pages a program and
 * user space share through mmap().
 *
 *   arena_fixed  4 pages at user address 1 << 32, map_extra given with
 *                libbpf's __ulong() (an enum whose one value is 64 bits:
 *                BTF ENUM64);
 *   arena        4 pages, map_extra 0 (the address mmap() picks) given in
 *                the pointer-to-array form, __uint(map_extra, 0).
 *
 * arena_write (syscall) allocates a page of `arena` with the kfunc
 * bpf_arena_alloc_pages(), writes 0xd0d0 into its first u32 and returns 1
 * (0 when no page could be had).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#ifndef __ulong
#define __ulong(name, val) enum { ___bpf_concat(__unique_value, __COUNTER__) = val } name
#endif
#define __arena	     __attribute__((address_space(1)))
#define NUMA_NO_NODE (-1)

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 4);
	__ulong(map_extra, 1ull << 32);
} arena_fixed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 4);
	__uint(map_extra, 0);
} arena SEC(".maps");

extern void __arena *bpf_arena_alloc_pages(void *map, void __arena *addr, __u32 page_cnt,
					   int node_id, __u64 flags) __ksym;

SEC("syscall")
int arena_write(void *ctx)
{
	__u32 __arena *page = bpf_arena_alloc_pages(&arena, NULL, 1, NUMA_NO_NODE, 0);

	if (!page)
		return 0;
	*page = 0xd0d0;
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
