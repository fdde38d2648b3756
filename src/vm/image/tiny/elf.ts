/**
 * Just enough ELF64 (little-endian, x86-64) reading for the tiny image builder: the shared
 * libraries a binary needs (DT_NEEDED) and the dependencies a kernel module declares in its
 * `.modinfo` section. Debian's kernel package ships no modules.dep (depmod runs at install
 * time), so `.modinfo` is where the dependency facts live.
 */
import { readFile } from 'node:fs/promises';

interface Section {
  name: string;
  type: number;
  offset: number;
  size: number;
  link: number;
}

const SHT_DYNAMIC = 6;
const DT_NULL = 0n;
const DT_NEEDED = 1n;

function parseSections(buf: Buffer, file: string): Section[] {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file}: not an ELF file`);
  if (buf[4] !== 2 || buf[5] !== 1) throw new Error(`${file}: only 64-bit little-endian ELF is supported`);
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const shstrndx = buf.readUInt16LE(0x3e);
  const headers = Array.from({ length: shnum }, (_, i) => {
    const at = shoff + i * shentsize;
    return {
      nameOffset: buf.readUInt32LE(at),
      type: buf.readUInt32LE(at + 4),
      offset: Number(buf.readBigUInt64LE(at + 0x18)),
      size: Number(buf.readBigUInt64LE(at + 0x20)),
      link: buf.readUInt32LE(at + 0x28),
    };
  });
  const names = headers[shstrndx];
  return headers.map(({ nameOffset, ...rest }) => ({
    ...rest,
    name: names ? cString(buf, names.offset + nameOffset) : '',
  }));
}

function cString(buf: Buffer, at: number): string {
  const end = buf.indexOf(0, at);
  return buf.toString('latin1', at, end < 0 ? buf.length : end);
}

/** Sonames from DT_NEEDED entries; empty for a static binary. */
export async function readNeededLibraries(file: string): Promise<string[]> {
  const buf = await readFile(file);
  const sections = parseSections(buf, file);
  const dynamic = sections.find((s) => s.type === SHT_DYNAMIC);
  if (!dynamic) return [];
  const strtab = sections[dynamic.link];
  if (!strtab) throw new Error(`${file}: .dynamic links to a missing string table`);
  const needed: string[] = [];
  for (let at = dynamic.offset; at + 16 <= dynamic.offset + dynamic.size; at += 16) {
    const tag = buf.readBigInt64LE(at);
    if (tag === DT_NULL) break;
    if (tag === DT_NEEDED) needed.push(cString(buf, strtab.offset + Number(buf.readBigUInt64LE(at + 8))));
  }
  return needed;
}

/** `depends=` of a kernel module (.ko), as module names; empty when it has none. */
export async function readModuleDepends(file: string): Promise<string[]> {
  const buf = await readFile(file);
  const modinfo = parseSections(buf, file).find((s) => s.name === '.modinfo');
  if (!modinfo) throw new Error(`${file}: no .modinfo section, is this a kernel module?`);
  const entries = buf.toString('latin1', modinfo.offset, modinfo.offset + modinfo.size).split('\0');
  const depends = entries.find((e) => e.startsWith('depends='))?.slice('depends='.length) ?? '';
  return depends.split(',').filter((d) => d.length > 0);
}

const PT_NOTE = 4;
const XEN_ELFNOTE_PHYS32_ENTRY = 18;

/**
 * True when an (uncompressed) kernel ELF carries the Xen PVH entry note, which lets QEMU's -kernel
 * jump straight into it without real-mode setup or self-decompression.
 */
export function hasPvhEntryNote(buf: Buffer): boolean {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) return false;
  const phoff = Number(buf.readBigUInt64LE(0x20));
  const phentsize = buf.readUInt16LE(0x36);
  const phnum = buf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (buf.readUInt32LE(ph) !== PT_NOTE) continue;
    const start = Number(buf.readBigUInt64LE(ph + 8));
    const end = start + Number(buf.readBigUInt64LE(ph + 0x20));
    for (let at = start; at + 12 <= end; ) {
      const nameSize = buf.readUInt32LE(at);
      const descSize = buf.readUInt32LE(at + 4);
      const type = buf.readUInt32LE(at + 8);
      const name = buf.toString('latin1', at + 12, at + 12 + Math.max(0, nameSize - 1));
      if (name === 'Xen' && type === XEN_ELFNOTE_PHYS32_ENTRY) return true;
      at += 12 + align4(nameSize) + align4(descSize);
    }
  }
  return false;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
