/**
 * The kernel file handed to QEMU's -kernel. Debian ships an xz-compressed bzImage; under TCG its
 * real-mode setup and self-decompression cost 5–8 s before Linux prints a line. The same kernel,
 * unpacked to its ELF form, boots through QEMU's PVH entry in well under a second (measured), so
 * that is what the image carries when it can. Otherwise the bzImage is used as is.
 */
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { hasPvhEntryNote } from './elf.ts';
import { filterThroughTool } from './run-tool.ts';

export type BootKernelFormat = 'pvh-elf' | 'bzimage';

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

/** The compressed kernel inside a bzImage, located through the boot protocol's setup header. */
function bzImagePayload(image: Buffer): Buffer | undefined {
  if (image.length < 0x250 || image.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
  if (image.readUInt16LE(0x206) < 0x208) return undefined; // payload fields exist from protocol 2.08
  const setupSectors = image[0x1f1] || 4;
  const start = (setupSectors + 1) * 512 + image.readUInt32LE(0x248);
  const payload = image.subarray(start, start + image.readUInt32LE(0x24c));
  return payload.length > 0 ? payload : undefined;
}

export async function writeBootKernel(
  bzImagePath: string,
  dest: string,
  log: (line: string) => void,
): Promise<BootKernelFormat> {
  const image = await readFile(bzImagePath);
  const payload = bzImagePayload(image);
  if (payload && payload.subarray(0, 6).equals(XZ_MAGIC)) {
    try {
      const elf = await filterThroughTool('xz', ['--decompress', '--stdout', '--single-stream'], payload);
      if (hasPvhEntryNote(elf)) {
        await writeFile(dest, elf);
        return 'pvh-elf';
      }
      log('the unpacked kernel has no PVH entry note: using the bzImage (slower boot under TCG)');
    } catch (error) {
      log(`cannot unpack the kernel (${error instanceof Error ? error.message : String(error)}): using the bzImage (slower boot under TCG)`);
    }
  } else {
    log('the kernel is not an xz-compressed bzImage: using it as is (slower boot under TCG)');
  }
  await copyFile(bzImagePath, dest);
  return 'bzimage';
}
