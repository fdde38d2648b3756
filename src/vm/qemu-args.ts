/**
 * The QEMU command line for a job VM, as a pure function so it can be read and tested in one
 * place. Every path in it is one we created; nothing here comes from a workflow or a webhook.
 */

export type Accelerator = 'kvm' | 'tcg';

export interface QemuArgsInput {
  accel: Accelerator;
  cpus: number;
  memoryMiB: number;
  overlay: string;
  seedIso: string;
  qmpSocket: string;
  consoleLog: string;
  pidFile: string;
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  /** Cut the guest off from the host's loopback and the outside world (`restrict=on`). */
  restrictNetwork?: boolean;
}

export function qemuArgs(input: QemuArgsInput): string[] {
  const args = [
    '-name', 'forgevm-job',
    // i440fx: its PIIX IDE controller carries the seed CD-ROM, which every cloud image finds.
    '-machine', `pc,accel=${input.accel}`,
    // KVM passes the host CPU through; under TCG `max` emulates every feature QEMU can.
    '-cpu', input.accel === 'kvm' ? 'host' : 'max',
    '-smp', String(input.cpus),
    '-m', String(input.memoryMiB),
    '-nodefaults',
    '-no-user-config',
    '-display', 'none',
    // On a full host disk, report I/O errors to the guest (the step fails) instead of pausing the VM forever.
    '-drive', `file=${input.overlay},if=virtio,format=qcow2,discard=unmap,werror=report,rerror=report`,
    '-drive', `file=${input.seedIso},media=cdrom,if=ide,readonly=on`,
    // Port 0: the OS picks a free port, read back over QMP. 127.0.0.1, never all interfaces.
    '-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:0-:22${input.restrictNetwork ? ',restrict=on' : ''}`,
    '-device', 'virtio-net-pci,netdev=net0',
    '-device', 'virtio-rng-pci',
    '-serial', `file:${input.consoleLog}`,
    '-qmp', `unix:${input.qmpSocket},server=on,wait=off`,
    '-pidfile', input.pidFile,
  ];
  if (input.kernel) {
    args.push('-kernel', input.kernel);
    if (input.initrd) args.push('-initrd', input.initrd);
    if (input.cmdline) args.push('-append', input.cmdline);
  }
  return args;
}
