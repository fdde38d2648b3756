/**
 * Load order for kernel modules, computed from each module's own `depends=` (.modinfo), because
 * Debian's kernel package does not ship modules.dep. Dependencies come first, each module once.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { readModuleDepends } from './elf.ts';

export interface KernelModule {
  name: string;
  /** Path relative to the kernel's modules folder (lib/modules/VERSION), e.g. kernel/fs/ext4/ext4.ko. */
  relPath: string;
}

/** Module names treat '-' and '_' alike; the kernel reports them with '_'. */
function moduleName(fileOrName: string): string {
  return path.basename(fileOrName).replace(/\.ko$/, '').replaceAll('-', '_');
}

async function indexModuleFiles(modulesDir: string): Promise<Map<string, string>> {
  const index = new Map<string, string>();
  const entries = await readdir(path.join(modulesDir, 'kernel'), { recursive: true });
  for (const entry of entries) {
    if (entry.endsWith('.ko')) index.set(moduleName(entry), path.join('kernel', entry));
  }
  return index;
}

async function readBuiltins(modulesDir: string): Promise<Set<string>> {
  const text = await readFile(path.join(modulesDir, 'modules.builtin'), 'utf8').catch(() => '');
  return new Set(text.split('\n').filter(Boolean).map(moduleName));
}

/**
 * Resolve `wanted` (module names) into an insmod order with dependencies first. Modules built into
 * the kernel are dropped, as are those in `alreadyLoaded` (e.g. loaded earlier by the initramfs).
 */
export async function resolveModuleOrder(
  modulesDir: string,
  wanted: readonly string[],
  alreadyLoaded: readonly KernelModule[] = [],
): Promise<KernelModule[]> {
  const files = await indexModuleFiles(modulesDir);
  const builtins = await readBuiltins(modulesDir);
  const done = new Set(alreadyLoaded.map((m) => m.name));
  const visiting = new Set<string>();
  const order: KernelModule[] = [];

  const visit = async (raw: string, wantedBy: string | undefined): Promise<void> => {
    const name = moduleName(raw);
    if (done.has(name) || builtins.has(name)) return;
    if (visiting.has(name)) throw new Error(`kernel module dependency cycle through ${name}`);
    const relPath = files.get(name);
    if (!relPath) {
      const via = wantedBy ? ` (needed by ${wantedBy})` : '';
      throw new Error(`kernel module ${name}${via} is not in ${modulesDir}: fix the module list in the tiny recipe`);
    }
    visiting.add(name);
    for (const dep of await readModuleDepends(path.join(modulesDir, relPath))) await visit(dep, name);
    visiting.delete(name);
    done.add(name);
    order.push({ name, relPath });
  };

  for (const name of wanted) await visit(name, undefined);
  return order;
}
