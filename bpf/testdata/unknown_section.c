// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A program in a section name libbpf 1.x does not know: "xdp_prog" was a
 * sloppy prefix match of "xdp" before libbpf 1.0. Loaders must refuse the
 * object naming the section, not skip the program.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp_prog")
int old_style(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
