/*
 * What the C baselines of the benchmarks share: raw bpf(2) calls the way
 * libbpf's thin wrappers make them, a monotonic clock, argument parsing and
 * error exits. Header-only: each baseline is one translation unit.
 */
#ifndef DP_BPF_BASELINE_H
#define DP_BPF_BASELINE_H

#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Bytes of union bpf_attr the element commands read (up to .flags), as libbpf passes. */
#define ELEM_ATTR_SIZE (offsetof(union bpf_attr, flags) + sizeof(((union bpf_attr *)0)->flags))

static void die(const char *what)
{
	fprintf(stderr, "baseline: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void fail(const char *msg)
{
	fprintf(stderr, "baseline: %s\n", msg);
	exit(1);
}

static long sys_bpf(enum bpf_cmd cmd, union bpf_attr *attr, unsigned int size)
{
	return syscall(__NR_bpf, cmd, attr, size);
}

static uint64_t ptr(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned long parse_count(const char *text, const char *name)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0' || end == text) {
		fprintf(stderr, "baseline: invalid %s \"%s\"\n", name, text);
		exit(2);
	}
	return n;
}

/* Opens a pinned object (BPF_OBJ_GET). */
static int obj_get(const char *path)
{
	union bpf_attr attr;
	long fd;

	memset(&attr, 0, sizeof(attr));
	attr.pathname = ptr(path);
	fd = sys_bpf(BPF_OBJ_GET, &attr, sizeof(attr));
	if (fd < 0)
		die(path);
	return (int)fd;
}

/* Reads a map's info (BPF_OBJ_GET_INFO_BY_FD). */
static struct bpf_map_info map_info(int fd)
{
	struct bpf_map_info info;
	union bpf_attr attr;

	memset(&info, 0, sizeof(info));
	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = (uint32_t)fd;
	attr.info.info_len = sizeof(info);
	attr.info.info = ptr(&info);
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr, sizeof(attr)) < 0)
		die("BPF_OBJ_GET_INFO_BY_FD");
	return info;
}

#endif
