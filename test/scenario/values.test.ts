import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  evalAddress,
  evalU64,
  evalU64Value,
  firstDifference,
  parseAddressExpr,
  parseU64,
  U64_MAX,
  u64Value,
  parseProtBytes,
  patternBytes,
  patternView,
  protBytesSummary,
  ValueError,
} from '../../src/scenario/values.ts';

describe('scenario values', () => {
  it('evalU64Value() is u64Value(evalU64()), numbers added as numbers where exact', () => {
    const names = new Map<string, number | bigint>([
      ['buf', 0x7f0000000000],
      ['zero', 0],
      ['negz', -0],
      ['top', Number.MAX_SAFE_INTEGER],
      ['big', 1n << 60n],
      ['half', 0.5],
    ]);
    const lookup = (n: string) => names.get(n);
    const outcome = (f: () => unknown): unknown => {
      try {
        return f();
      } catch (e) {
        return `${(e as Error).name}: ${(e as Error).message}`;
      }
    };
    for (const v of [
      'buf',
      'buf+4KiB',
      'buf-4096',
      'buf+2MiB-4KiB',
      'zero',
      'zero+0',
      'negz',
      'zero-1',
      'top',
      'top+1',
      'top-1',
      'big',
      'big+1',
      'half',
      'half+1',
      'nope',
      'nope+4096',
      '4096',
      '0x10',
      '8KiB',
      ' 12 ',
      '0xffffffffffffffff',
      '0x10000000000000000',
      12,
      2n ** 63n,
      -1,
    ] as (string | number | bigint)[]) {
      const want = outcome(() => u64Value(evalU64(v, lookup)));
      const got = outcome(() => evalU64Value(v, lookup));
      assert.ok(Object.is(got, want), `${String(v)}: ${String(got)}, expected ${String(want)}`);
    }
  });

  it('address expressions', () => {
    assert.deepEqual(parseAddressExpr('buf'), { name: 'buf', offset: 0 });
    assert.deepEqual(parseAddressExpr('buf+2MiB'), { name: 'buf', offset: 2 * 1024 * 1024 });
    assert.deepEqual(parseAddressExpr('buf+2MiB-4KiB'), { name: 'buf', offset: 2 * 1024 * 1024 - 4096 });
    assert.deepEqual(parseAddressExpr('0x1000'), { name: null, offset: 4096 });
    assert.equal(
      evalAddress('buf-4096', (n) => (n === 'buf' ? 0x10000 : undefined)),
      0xf000,
    );
    assert.throws(() => evalAddress('nope', () => undefined), ValueError);
    assert.throws(() => parseAddressExpr('buf*2'), ValueError);
  });

  it('u64 values are exact at 2^53 - 1, 2^53, 2^53 + 1 and 2^64 - 1', () => {
    assert.equal(parseU64('0xffffffffffffffff'), U64_MAX);
    assert.equal(parseU64('18446744073709551615'), U64_MAX);
    assert.equal(parseU64(2n ** 53n + 1n), 2n ** 53n + 1n);
    assert.equal(parseU64('9007199254740993'), 2n ** 53n + 1n);
    assert.equal(parseU64(Number.MAX_SAFE_INTEGER), 2n ** 53n - 1n);
    assert.equal(parseU64('2MiB'), 2n * 1024n * 1024n);
    // Not representable as a safe double: refused, never rounded.
    assert.throws(() => parseU64(2 ** 53), ValueError);
    assert.throws(() => parseU64('0x10000000000000000'), ValueError);
    assert.throws(() => parseU64(-1n), ValueError);
    // A u64 value is a number while that is exact, a bigint above.
    assert.equal(u64Value(2n ** 53n - 1n), Number.MAX_SAFE_INTEGER);
    assert.equal(u64Value(2n ** 53n), 2n ** 53n);
    const hi = (n: string) => (n === 'hi' ? 2n ** 63n + 1n : undefined);
    assert.equal(evalU64('hi+4KiB', hi), 2n ** 63n + 4097n);
    assert.equal(evalU64('hi-1', hi), 2n ** 63n);
    assert.throws(() => evalU64('hi+0x8000000000000000', hi), ValueError);
  });

  it('index32 patterns are the bytes of each word, however long and wherever they start', () => {
    // The definition, a byte at a time: byte b of a buffer at `offset` is byte (offset + b) % 4,
    // little-endian, of word floor((offset + b) / 4) (negated for neg_index32).
    const byByte = (neg: boolean, offset: number, length: number): number[] => {
      const out: number[] = [];
      for (let i = 0; i < length; i++) {
        const word = Math.floor((offset + i) / 4);
        out.push((((neg ? -word : word) >>> 0) >>> (((offset + i) % 4) * 8)) & 0xff);
      }
      return out;
    };
    for (const pattern of ['index32', 'neg_index32'] as const) {
      for (const offset of [0, 1, 2, 3, 4, 8, 4094, 4096, 2 ** 34, 2 ** 34 + 2]) {
        for (const length of [0, 1, 3, 4, 5, 8, 4099, 8192]) {
          const got = [...patternBytes({ pattern, offset }, length)];
          assert.deepEqual(
            got,
            byByte(pattern === 'neg_index32', offset, length),
            `${pattern} ${offset} ${length}`,
          );
        }
      }
    }
  });

  it('index32 patterns with an offset continue the same sequence', () => {
    const whole = patternBytes({ pattern: 'index32' }, 64);
    const tail = patternBytes({ pattern: 'index32', offset: 32 }, 32);
    assert.deepEqual(tail, whole.subarray(32));
    const view = new DataView(whole.buffer);
    assert.equal(view.getUint32(4 * 5, true), 5);
    const neg = new DataView(patternBytes({ pattern: 'neg_index32' }, 16).buffer);
    assert.equal(neg.getInt32(8, true), -2);
    assert.deepEqual([...patternBytes({ fill: 0xab }, 3)], [0xab, 0xab, 0xab]);
  });

  it('firstDifference finds the first differing byte, aligned or not, in the words or the tail', () => {
    const want = patternBytes({ pattern: 'index32' }, 4099);
    assert.equal(firstDifference(want.slice(), want), null);
    for (const at of [0, 5, 4095, 4096, 4098]) {
      const got = want.slice();
      got[at] ^= 0x80;
      got[4098 - (at % 2)] ^= 1;
      assert.match(firstDifference(got, want) ?? '', new RegExp(`^byte ${at} \\(0x${at.toString(16)}\\)`));
    }
    // Views that start off a word boundary.
    const a = new Uint8Array(4100);
    const b = new Uint8Array(4100);
    a.set(want, 1);
    b.set(want, 1);
    assert.equal(firstDifference(a.subarray(1), b.subarray(1)), null);
    a[3000] ^= 1;
    assert.match(firstDifference(a.subarray(1), b.subarray(1)) ?? '', /^byte 2999 /);
    assert.equal(firstDifference(new Uint8Array(3), new Uint8Array(3)), null);
    assert.match(firstDifference(new Uint8Array([0, 0, 1]), new Uint8Array(3)) ?? '', /^byte 2 /);
  });

  it('patternView is patternBytes without the copy', () => {
    const spec = { pattern: 'neg_index32' as const };
    const view = patternView(spec, 64);
    assert.equal(patternView(spec, 64), view);
    const copy = patternBytes(spec, 64);
    assert.notEqual(copy, view);
    assert.deepEqual(copy, view);
  });

  it('SNAPSHOT byte names', () => {
    assert.deepEqual(
      parseProtBytes(['ZERO|READ', 'WRITE*2', 'DEV_PRIVATE_LOCAL|WRITE*2', 'ERROR']),
      [0x11, 0x02, 0x02, 0x22, 0x22, 0xff],
    );
    assert.throws(() => parseProtBytes(['WRTIE']), ValueError);
    assert.equal(protBytesSummary([0x02, 0x02, 0x11]), '[WRITE*2, ZERO|READ]');
  });
});
