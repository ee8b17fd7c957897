/** Every op handler by op name. */
import { checkOps } from './checks.ts';
import { deviceOps } from './devices.ts';
import { dmirrorOps } from './dmirror.ts';
import { fileOps } from './files.ts';
import { gpuOps } from './gpu.ts';
import { iommufdOps } from './iommufd.ts';
import { legacyMirrorOps } from './legacy_mirror.ts';
import { mmOps } from './mm.ts';
import type { OpHandler } from './types.ts';

export const HANDLERS: Record<string, OpHandler> = {
  ...mmOps,
  ...fileOps,
  ...dmirrorOps,
  ...deviceOps,
  ...gpuOps,
  ...legacyMirrorOps,
  ...iommufdOps,
  ...checkOps,
};
export type { OpHandler } from './types.ts';
export { driverIoctl } from './devices.ts';
