/**
 * The image catalog: which VM image a `runs-on` label boots. Part of the configuration file
 * (`images:`), merged over the built-in entries below.
 */
import { z } from 'zod';

/**
 * Either a pinned digest, or the vendor's published sums file (SHA256SUMS / SHA512SUMS) for
 * "latest" URLs whose digest changes with every release. Pinning is stronger; sums files are
 * fetched over HTTPS from the same vendor.
 */
const checksum = z.union([
  z.string().regex(/^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/, 'must be "sha256:<64 hex>" or "sha512:<128 hex>"'),
  z.object({ sums: z.url(), algorithm: z.enum(['sha256', 'sha512']) }).strict(),
]);

/** A file of the image: either already on disk (path, relative to the images folder) or downloadable (url + checksum). */
const imageFile = z.union([
  z.object({ path: z.string().min(1) }).strict(),
  z.object({ url: z.url(), checksum }).strict(),
]);

export const imageSchema = z
  .object({
    description: z.string().optional(),
    /** The root disk. */
    disk: imageFile,
    format: z.enum(['qcow2', 'raw']).default('qcow2'),
    /** Direct kernel boot: kernel plus initrd plus disk. Absent for cloud images, which boot through their bootloader. */
    kernel: imageFile.optional(),
    initrd: imageFile.optional(),
    cmdline: z.string().optional(),
    /** The login user cloud-init gives our key to (the image's default user). */
    user: z.string().regex(/^[a-z_][a-z0-9_-]*$/),
    cpus: z.number().int().min(1).max(64).default(2),
    memoryMiB: z.number().int().min(128).max(262144).default(2048),
    /** The per-job overlay is grown to this size; the guest may use it after growpart. */
    diskGiB: z.number().int().min(1).max(2048).optional(),
    /**
     * `nat` (default): the guest reaches the internet through QEMU's user-mode NAT, and the
     * host's loopback services at 10.0.2.2. `isolated`: QEMU's `restrict=on`, no packets leave
     * the VM except our SSH port forward; for jobs that need no network, or for untrusted code
     * on a host that runs services on 127.0.0.1.
     */
    network: z.enum(['nat', 'isolated'], { error: 'must be nat or isolated' }).default('nat'),
    /** Seconds to wait for SSH after QEMU starts. */
    bootTimeoutSeconds: z.number().int().min(5).max(3600).default(300),
    /**
     * The image's own Node.js for JavaScript actions (an absolute path in the guest). Without it,
     * forgevm installs the official Node it pins at /opt/forgevm/node when a job first needs it.
     */
    node: z.string().regex(/^\/[^\0\n]*$/, 'must be an absolute path in the guest, e.g. /usr/bin/node').optional(),
    /** Built by `forgevm image build <label>` instead of downloaded. */
    builtin: z.literal('tiny').optional(),
  })
  .strict()
  .refine((image) => !image.initrd || image.kernel, { message: 'initrd needs a kernel' });

export type ImageSpec = z.infer<typeof imageSchema>;
export type ImageFile = z.infer<typeof imageFile>;

export const imageCatalogSchema = z.record(z.string().regex(/^[A-Za-z0-9._-]+$/, 'labels use letters, digits, ".", "_" and "-"'), imageSchema);
export type ImageCatalog = Record<string, ImageSpec>;

/**
 * Shipped entries. Cloud images are pinned to dated releases so the checksum stays true;
 * bump them together.
 */
export const builtinImages: Record<string, z.input<typeof imageSchema>> = {
  tiny: {
    description: 'Offline test guest built from Debian packages (busybox, dropbear, bash, git)',
    builtin: 'tiny',
    disk: { path: 'tiny/disk.qcow2' },
    kernel: { path: 'tiny/vmlinuz' },
    initrd: { path: 'tiny/initrd.img' },
    cmdline: 'console=ttyS0 root=/dev/vda rw quiet',
    user: 'root',
    cpus: 2,
    memoryMiB: 1024,
    // It boots in ~15 s alone under TCG; several guests on 2 cores take longer.
    bootTimeoutSeconds: 120,
  },
  'debian-13': {
    description: 'Debian 13 (trixie) generic cloud image, latest build',
    disk: {
      url: 'https://cloud.debian.org/images/cloud/trixie/latest/debian-13-genericcloud-amd64.qcow2',
      checksum: { sums: 'https://cloud.debian.org/images/cloud/trixie/latest/SHA512SUMS', algorithm: 'sha512' },
    },
    user: 'debian',
    diskGiB: 20,
  },
  'debian-12': {
    description: 'Debian 12 (bookworm) generic cloud image, latest build',
    disk: {
      url: 'https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2',
      checksum: { sums: 'https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS', algorithm: 'sha512' },
    },
    user: 'debian',
    diskGiB: 20,
  },
  'ubuntu-24.04': {
    description: 'Ubuntu 24.04 LTS (noble) cloud image, latest release',
    disk: {
      url: 'https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-amd64.img',
      checksum: { sums: 'https://cloud-images.ubuntu.com/releases/noble/release/SHA256SUMS', algorithm: 'sha256' },
    },
    user: 'ubuntu',
    diskGiB: 20,
  },
  'ubuntu-22.04': {
    description: 'Ubuntu 22.04 LTS (jammy) cloud image, latest release',
    disk: {
      url: 'https://cloud-images.ubuntu.com/releases/jammy/release/ubuntu-22.04-server-cloudimg-amd64.img',
      checksum: { sums: 'https://cloud-images.ubuntu.com/releases/jammy/release/SHA256SUMS', algorithm: 'sha256' },
    },
    user: 'ubuntu',
    diskGiB: 20,
  },
};

/** Labels GitHub users write, mapped to our images. */
export const labelAliases: Record<string, string> = {
  'ubuntu-latest': 'ubuntu-24.04',
  'debian-latest': 'debian-13',
};

export function buildCatalog(overrides: Record<string, unknown> = {}): { catalog: ImageCatalog; problems: string[] } {
  const merged = { ...builtinImages, ...overrides };
  const parsed = imageCatalogSchema.safeParse(merged);
  if (parsed.success) return { catalog: parsed.data, problems: [] };
  const problems = parsed.error.issues.map((issue) => `images.${issue.path.join('.')}: ${issue.message}`);
  return { catalog: {}, problems };
}

export class UnknownImageError extends Error {
  constructor(label: string, known: string[]) {
    super(`unknown image label "${label}": runs-on must name an image in the catalog (${known.join(', ')}); add it under images: in the config or pick one of these`);
  }
}

export function resolveImage(catalog: ImageCatalog, label: string): { label: string; image: ImageSpec } {
  const name = catalog[label] ? label : (labelAliases[label] ?? label);
  const image = catalog[name];
  if (!image) throw new UnknownImageError(label, Object.keys(catalog));
  return { label: name, image };
}
