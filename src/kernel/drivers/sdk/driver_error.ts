/**
 * The typed error of the driver SDK. Kernel paths a driver calls return -errno as the kernel does;
 * a DriverError is raised only when a driver breaks an SDK rule the kernel would have caught
 * with a WARN or a crash (a lock it must hold is not held, state it never set is read, an ops
 * table misses a callback the kernel requires). The issue is data: a code, a path, and the fields
 * that code needs; the message is rendered from it and tests match codes.
 */
import { Errno, KernelError } from '../../errno.ts';

export type DriverIssue =
  | { code: 'missing_op'; path: ['ops', string] }
  | { code: 'not_a_function'; path: ['ops', string] }
  | { code: 'no_drvdata'; path: ['device', string] }
  | { code: 'device_exists'; path: ['device', string] }
  | { code: 'lock_not_held'; path: ['lock', string]; guards: string }
  | { code: 'bad_ioctl_spec'; path: ['ioctls', string]; why: string }
  | { code: 'device_removed'; path: ['device', string] };

function render(issue: DriverIssue): string {
  const where = issue.path.join('.');
  switch (issue.code) {
    case 'missing_op':
      return `${where}: the driver must implement this callback`;
    case 'not_a_function':
      return `${where}: not a function`;
    case 'no_drvdata':
      return `${where}: probe() did not set the device's driver data (devSetDrvdata)`;
    case 'device_exists':
      return `${where}: a device of this name already exists`;
    case 'lock_not_held':
      return `${where}: must be held to touch ${issue.guards}`;
    case 'bad_ioctl_spec':
      return `${where}: ${issue.why}`;
    case 'device_removed':
      return `${where}: the device has been removed`;
  }
}

/** An SDK rule the driver broke. `errno` is EINVAL, so a step that hits one fails cleanly. */
export class DriverError extends KernelError {
  constructor(readonly issue: DriverIssue) {
    super(Errno.EINVAL, render(issue));
    this.name = 'DriverError';
  }
}
