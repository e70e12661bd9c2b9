// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Every BTF kind clang emits, for the BTF parser's unit tests (btf.test.ts
 * compiles it with clang-19 into a temporary folder): bitfields (kind_flag),
 * FLOAT, ENUM64, a signed ENUM, DECL_TAG, TYPE_TAG, FWD, UNION, qualifiers,
 * multi-dimensional arrays, function pointers, static and global functions,
 * variables in .data, .rodata, .bss and a named .data.* section, and CO-RE
 * relocations of several kinds. */
typedef unsigned int u32;
typedef unsigned long long u64;

#define SEC(name) __attribute__((section(name), used))
#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __user __attribute__((btf_type_tag("user")))

struct opaque;

union word {
	u32 w;
	unsigned char b[4];
};

struct flags {
	unsigned int a : 3;
	unsigned int b : 5;
	int c : 12;
	u64 wide;
	union word word;
	struct {
		int x;
		int y;
	} pt;
	double ratio;
	float f;
	int grid[2][3];
	const volatile int cv;
	struct opaque *op;
	int (*cb)(int, void *);
	char *restrict rp;
	int __user *up;
} __tag("flags_tag");

enum small { SMALL_A = 1, SMALL_B = 2 };
enum neg { NEG_A = -1, NEG_B = 1 };
enum big { BIG_A = 0x100000000ULL, BIG_B = 1 };

struct flags flags_var SEC(".data.flags");
volatile const u32 config = 7;
u64 counter;
enum small e_small;
enum neg e_neg;
enum big e_big;
int initialized = 3;

struct sk_buff___local {
	unsigned int len;
	unsigned int mark;
} __attribute__((preserve_access_index));

static __attribute__((noinline)) __tag("helper_tag") int helper(struct flags *f, int scale __tag("param_tag"))
{
	return (f->a + f->c) * scale;
}

SEC("socket")
int kinds(struct sk_buff___local *skb)
{
	int len = skb->mark;

	counter += e_small + e_neg + (u64)e_big + initialized;
	len += __builtin_preserve_field_info(skb->len, 1);
	len += __builtin_preserve_field_info(skb->mark, 2);
	len += __builtin_preserve_type_info(*skb, 1);
	len += __builtin_preserve_enum_value(*(enum big *)BIG_A, 1);
	return helper(&flags_var, 2) + config + len;
}

char LICENSE[] SEC("license") = "GPL";
