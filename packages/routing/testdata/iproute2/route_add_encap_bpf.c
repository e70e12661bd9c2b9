// The object iproute2 loaded for route_add_encap_bpf.json:
//
//   clang-19 -O2 -g -target bpf -c route_add_encap_bpf.c -o lwt.o
//   node scripts/capture_iproute2.mjs route_add_encap_bpf --veth --obj lwt.o \
//     --setup "ip addr add 10.1.0.2/24 dev d0" -- ip route add 10.9.0.0/24 dev d0 \
//     encap bpf in obj '$OBJ' section lwt_in xmit obj '$OBJ' section lwt_xmit headroom 14
//
// iproute2 names each program "lwt.o:[SECTION]" and passes it as descriptors 7 and 9.
__attribute__((section("lwt_in"), used)) int prog_in(void *ctx) { return 0; }
__attribute__((section("lwt_xmit"), used)) int prog_xmit(void *ctx) { return 0; }
char _license[] __attribute__((section("license"), used)) = "GPL";
