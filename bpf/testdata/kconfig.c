// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* .kconfig externs, filled in by the loader before load.
 *
 * The externs are undefined symbols (st_shndx 0) whose BTF VARs are in a
 * DATASEC named ".kconfig"; there is no .kconfig ELF section. The loader
 * lays them out in a read-only, frozen array map (like .rodata) and
 * relocates each ld_imm64 (R_BPF_64_64 against the extern's symbol) to that
 * map's value plus the variable's offset. Values:
 *   LINUX_KERNEL_VERSION  KERNEL_VERSION(major, minor, patch) of the running
 *                         kernel (patch capped at 255), from uname's release;
 *   CONFIG_BPF_SYSCALL    bool from /proc/config.gz ("y" -> 1);
 *   CONFIG_HZ             int from /proc/config.gz (e.g. 250);
 *   CONFIG_DP_NO_SUCH_OPTION
 *                         __weak and absent from every config: 0, not an
 *                         error (a non-weak absent extern is an error).
 *
 * kconfig_values (tc) copies them into kconfig_out[0] (a struct
 * kconfig_result) and returns 1 when CONFIG_BPF_SYSCALL is set.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern _Bool CONFIG_BPF_SYSCALL __kconfig;
extern int CONFIG_HZ __kconfig;
extern _Bool CONFIG_DP_NO_SUCH_OPTION __kconfig __weak;

struct kconfig_result {
	__u32 linux_kernel_version;
	__u32 bpf_syscall;
	__u32 hz;
	__u32 no_such_option;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kconfig_result);
} kconfig_out SEC(".maps");

SEC("tc")
int kconfig_values(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct kconfig_result *r = bpf_map_lookup_elem(&kconfig_out, &key);

	if (!r)
		return -1;
	r->linux_kernel_version = LINUX_KERNEL_VERSION;
	r->bpf_syscall = CONFIG_BPF_SYSCALL;
	r->hz = CONFIG_HZ;
	r->no_such_option = CONFIG_DP_NO_SUCH_OPTION;
	return CONFIG_BPF_SYSCALL ? 1 : 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
