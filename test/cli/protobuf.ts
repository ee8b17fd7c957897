/** A protobuf wire-format reader for the Perfetto trace tests, independent of the writer under test. */
import assert from 'node:assert/strict';
import { PF } from '../../src/cli/perfetto.ts';

/** A decoded protobuf message: field number -> values (numbers as bigint, length-delimited as bytes). */
export type Msg = Map<number, (bigint | Uint8Array)[]>;

/** A protobuf wire-format reader, independent of the writer under test. */
export function decode(buf: Uint8Array): Msg {
  const out: Msg = new Map();
  let pos = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      assert.ok(pos < buf.length, 'varint runs past the end');
      const b = buf[pos++];
      v |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if ((b & 0x80) === 0) return v;
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    let value: bigint | Uint8Array;
    if (wire === 0) value = varint();
    else if (wire === 1) {
      value = buf.slice(pos, pos + 8);
      pos += 8;
    } else if (wire === 2) {
      const n = Number(varint());
      value = buf.slice(pos, pos + n);
      pos += n;
      assert.ok(pos <= buf.length, 'length runs past the end');
    } else assert.fail(`unexpected wire type ${wire}`);
    out.set(field, [...(out.get(field) ?? []), value]);
  }
  return out;
}

export const text = (b: bigint | Uint8Array | undefined): string => new TextDecoder().decode(b as Uint8Array);
export const sub = (m: Msg, f: number): Msg | undefined => {
  const v = m.get(f)?.[0];
  return v instanceof Uint8Array ? decode(v) : undefined;
};

export function packets(bytes: Uint8Array): Msg[] {
  return (decode(bytes).get(PF.trace.packet) ?? []).map((p) => decode(p as Uint8Array));
}
