// A minimal BPF instruction encoder for probes and tests. Full programs
// come from clang-built objects; this covers the handful of instructions
// feature probes and kernel tests write by hand.

/** One encoded instruction (8 bytes) or a wide one (16 bytes). */
export type Insn = Uint8Array;

function insn(code: number, dst: number, src: number, off: number, imm: number): Insn {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  b[0] = code;
  b[1] = (dst & 0xf) | ((src & 0xf) << 4);
  dv.setInt16(2, off, true);
  dv.setInt32(4, imm, true);
  return b;
}

/** `dst = imm` (64-bit move of a sign-extended 32-bit immediate). */
export function movImm(dst: number, imm: number): Insn {
  return insn(0xb7, dst, 0, 0, imm);
}

/** `dst = src` (64-bit register move). */
export function movReg(dst: number, src: number): Insn {
  return insn(0xbf, dst, src, 0, 0);
}

/** `dst += imm` (64-bit). */
export function addImm(dst: number, imm: number): Insn {
  return insn(0x07, dst, 0, 0, imm);
}

/** `*(u32 *)(dst + off) = imm` */
export function stW(dst: number, off: number, imm: number): Insn {
  return insn(0x62, dst, 0, off, imm);
}

/** `*(u64 *)(dst + off) = src` */
export function stxDw(dst: number, src: number, off: number): Insn {
  return insn(0x7b, dst, src, off, 0);
}

/** `dst = *(u32 *)(src + off)` */
export function ldxW(dst: number, src: number, off: number): Insn {
  return insn(0x61, dst, src, off, 0);
}

/** `dst = *(u64 *)(src + off)` */
export function ldxDw(dst: number, src: number, off: number): Insn {
  return insn(0x79, dst, src, off, 0);
}

/** `lock *(u64 *)(dst + off) += src` (atomic add). */
export function atomicAddDw(dst: number, src: number, off: number): Insn {
  return insn(0xdb, dst, src, off, 0);
}

/** `if dst == imm goto +off` */
export function jeqImm(dst: number, imm: number, off: number): Insn {
  return insn(0x15, dst, 0, off, imm);
}

/** `goto +off` */
export function ja(off: number): Insn {
  return insn(0x05, 0, 0, off, 0);
}

/** `call helper` */
export function call(helper: number): Insn {
  return insn(0x85, 0, 0, 0, helper);
}

/** `exit` */
export function exit(): Insn {
  return insn(0x95, 0, 0, 0, 0);
}

/** `dst = map` (ld_imm64 with BPF_PSEUDO_MAP_FD): two instruction slots. */
export function ldMapFd(dst: number, fd: number): Insn {
  const b = new Uint8Array(16);
  b.set(insn(0x18, dst, 1, 0, fd), 0);
  return b;
}

/** Concatenates instructions into a program. */
export function program(...insns: Insn[]): Uint8Array {
  const total = insns.reduce((n, i) => n + i.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const i of insns) {
    out.set(i, off);
    off += i.length;
  }
  return out;
}
