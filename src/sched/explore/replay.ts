/**
 * Replay tokens: `v1.<strategy>.s<seed>[.m<maxSteps>].<payload>`, ASCII and URL-safe so they paste
 * into a shell, a test or a browser address. The payload stores only the decisions that differ
 * from the default chooser (keep running the last thread, else the first runnable), so a
 * minimised schedule with two preemptions encodes in a handful of bytes however long it runs.
 * Payload: base64url of unsigned LEB128 varints: count, then per override (gap since the previous
 * override's depth, runnable index).
 */
import type { StrategyName } from './types.ts';
import { fromBase64Url, toBase64Url } from '../../lib/base64url.ts';

const STRATEGIES: readonly StrategyName[] = ['random', 'pct', 'dfs'];

export interface DecodedToken {
  strategy: StrategyName;
  seed: number;
  /** undefined: the default livelock bound. */
  maxSteps: number | undefined;
  /** Choice depth -> runnable index, for the non-default decisions only. */
  overrides: Map<number, number>;
}

export class ReplayTokenError extends Error {
  constructor(
    readonly token: string,
    why: string,
  ) {
    super(`invalid replay token '${token}': ${why}`);
    this.name = 'ReplayTokenError';
  }
}

function pushVarint(out: number[], n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`varint out of range: ${n}`);
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
}

export function encodeToken(
  strategy: StrategyName,
  seed: number,
  overrides: ReadonlyMap<number, number>,
  maxSteps?: number,
): string {
  const bytes: number[] = [];
  const entries = [...overrides].sort((a, b) => a[0] - b[0]);
  pushVarint(bytes, entries.length);
  let prev = -1;
  for (const [depth, index] of entries) {
    pushVarint(bytes, depth - prev - 1);
    pushVarint(bytes, index);
    prev = depth;
  }
  const payload = toBase64Url(bytes);
  const parts = ['v1', strategy, `s${seed}`];
  if (maxSteps !== undefined) parts.push(`m${maxSteps}`);
  parts.push(payload);
  return parts.join('.');
}

export function decodeToken(token: string): DecodedToken {
  const parts = token.trim().split('.');
  if (parts.length < 4 || parts.length > 5)
    throw new ReplayTokenError(token, 'expected v1.<strategy>.s<seed>.<data>');
  if (parts[0] !== 'v1') throw new ReplayTokenError(token, `unknown version '${parts[0]}'`);
  const strategy = parts[1] as StrategyName;
  if (!STRATEGIES.includes(strategy)) throw new ReplayTokenError(token, `unknown strategy '${parts[1]}'`);
  const seed = intField(token, parts[2], 's', true);
  const maxSteps = parts.length === 5 ? intField(token, parts[3], 'm', false) : undefined;
  const payload = parts[parts.length - 1];
  if (!/^[A-Za-z0-9_-]+$/.test(payload)) throw new ReplayTokenError(token, 'payload is not base64url');
  const bytes = fromBase64Url(payload);
  let pos = 0;
  const read = (): number => {
    let n = 0;
    let mul = 1;
    for (;;) {
      if (pos >= bytes.length) throw new ReplayTokenError(token, 'payload truncated');
      const b = bytes[pos++];
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 0x80;
      if (mul > 2 ** 49) throw new ReplayTokenError(token, 'varint too long');
    }
  };
  const count = read();
  const overrides = new Map<number, number>();
  let depth = -1;
  for (let i = 0; i < count; i++) {
    depth += read() + 1;
    overrides.set(depth, read());
  }
  if (pos !== bytes.length) throw new ReplayTokenError(token, 'trailing bytes in payload');
  return { strategy, seed, maxSteps, overrides };
}

function intField(token: string, part: string, prefix: string, signed: boolean): number {
  const re = signed ? /^-?\d+$/ : /^\d+$/;
  const body = part.slice(prefix.length);
  if (!part.startsWith(prefix) || !re.test(body)) throw new ReplayTokenError(token, `bad field '${part}'`);
  const n = Number(body);
  if (!Number.isSafeInteger(n)) throw new ReplayTokenError(token, `field '${part}' out of range`);
  return n;
}
