// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Global data: each data section becomes a one-entry array map whose value
 * is the section's bytes, and each instruction that references a variable is
 * an ld_imm64 of that map's value plus the variable's offset.
 *
 *  - .rodata         `volatile const` variables: constants a user sets
 *                    before load (u32, s16, u64, bool); the map is created
 *                    BPF_F_RDONLY_PROG and frozen before the program loads;
 *  - .rodata.custom  a named read-only section;
 *  - .rodata.str1.1  clang's section for string literals, here the
 *                    bpf_snprintf() format "magic=%u": it has no BTF DATASEC
 *                    and no variable symbols, and must be frozen because the
 *                    helper wants a constant string;
 *  - .data           initialised variables (u64, a struct) that a user can
 *                    read and write after load;
 *  - .data.custom    a named writable section;
 *  - .bss            zero-initialised variables (no bytes in the file,
 *                    SHT_NOBITS), written by the program.
 *
 * globals_tc returns `magic` (7 unless set before load; 0 when `enabled` is
 * set to false) and, on each run: sets bss_magic_plus_one = magic + 1,
 * bss_len = skb->len, bss_big = big_const, bss_message = "magic=<magic>";
 * adds 1 to data_counter (starts at 100), adds small_signed (-2) to
 * data_pair.b (starts at -1) and custom_step (10) to custom_counter
 * (starts at 3).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct pair {
	__u32 a;
	__s32 b;
};

/* .rodata */
volatile const __u32 magic = 7;
volatile const __s16 small_signed = -2;
volatile const __u64 big_const = 0x0102030405060708ULL;
volatile const _Bool enabled = 1;

/* .rodata.custom */
volatile const __u32 custom_step SEC(".rodata.custom") = 10;

/* .data */
__u64 data_counter = 100;
struct pair data_pair = { .a = 1, .b = -1 };

/* .data.custom */
__u32 custom_counter SEC(".data.custom") = 3;

/* .bss */
__u32 bss_magic_plus_one;
__u32 bss_len;
__u64 bss_big;
char bss_message[16];

SEC("tc")
int globals_tc(struct __sk_buff *skb)
{
	__u64 args[1] = { magic };

	bss_magic_plus_one = magic + 1;
	bss_len = skb->len;
	bss_big = big_const;
	data_counter++;
	data_pair.b += small_signed;
	custom_counter += custom_step;
	bpf_snprintf(bss_message, sizeof(bss_message), "magic=%u", args, sizeof(args));
	return enabled ? magic : 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
