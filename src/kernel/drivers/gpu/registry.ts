/**
 * The built-in GPU device kinds: a kind name (what a scenario's `devices:` entry gives as
 * `type`) maps to a factory that registers an SDK device of that kind and returns its GpuDevice.
 * Driver modules register themselves on import (gpu/index.ts imports them all), so the scenario
 * layer knows every kind without naming any.
 */
import type { KGen } from '../../../sched/types.ts';
import type { System } from '../../system.ts';
import type { GpuDevice } from './gpu_device.ts';

export interface GpuKind {
  readonly name: string;
  /** One line for `hetmem schema`. */
  readonly doc: string;
  /** The config keys the kind accepts, each with one line of doc (anything else is refused). */
  readonly config: Readonly<Record<string, string>>;
  /** Registers device `name` of this kind: its GpuDevice, or -errno. */
  create(sys: System, name: string, config: Readonly<Record<string, unknown>>): KGen<GpuDevice | number>;
}

const kinds = new Map<string, GpuKind>();
const devices = new WeakMap<System, Map<string, GpuDevice>>();

/** Adds a kind; a second kind of the same name is a programming error. */
export function registerGpuKind(kind: GpuKind): void {
  if (kinds.has(kind.name)) throw new Error(`GPU kind ${kind.name} registered twice`);
  kinds.set(kind.name, kind);
}

export function gpuKind(name: string): GpuKind | undefined {
  return kinds.get(name);
}

export function gpuKindNames(): string[] {
  return [...kinds.keys()].sort();
}

/** Creates GPU `name` of `kind` in `sys` and remembers it for gpuDevice(). */
export function* createGpuDevice(
  sys: System,
  kind: string,
  name: string,
  config: Readonly<Record<string, unknown>> = {},
): KGen<GpuDevice | number> {
  const k = kinds.get(kind);
  if (k === undefined) throw new Error(`no GPU kind ${kind}`);
  const gpu = yield* k.create(sys, name, config);
  if (typeof gpu === 'number') return gpu;
  let m = devices.get(sys);
  if (m === undefined) devices.set(sys, (m = new Map<string, GpuDevice>()));
  m.set(name, gpu);
  return gpu;
}

/** The GPU device named `name` in `sys`, or null. */
export function gpuDevice(sys: System, name: string): GpuDevice | null {
  return devices.get(sys)?.get(name) ?? null;
}
