import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SizeError, formatSize, parseSize } from '../../src/lib/size.ts';

const UNITS: readonly [string[], number][] = [
  [['', 'B'], 1],
  [['K', 'KiB', 'k', 'kib'], 2 ** 10],
  [['M', 'MiB'], 2 ** 20],
  [['G', 'GiB'], 2 ** 30],
  [['T', 'TiB'], 2 ** 40],
];

function rejects(input: string | number, message: RegExp): void {
  assert.throws(
    () => parseSize(input),
    (e: unknown) => e instanceof SizeError && message.test(e.message),
    `expected ${String(input)} to be rejected with ${message}`,
  );
}

void describe('parseSize', () => {
  void it('parses the documented forms', () => {
    const cases: [string | number, number][] = [
      ['4096', 4096],
      ['4096B', 4096],
      ['4KiB', 4096],
      ['2MiB', 2 * 2 ** 20],
      ['1GiB', 2 ** 30],
      ['1TiB', 2 ** 40],
      ['4K', 4096],
      ['2M', 2 * 2 ** 20],
      ['3G', 3 * 2 ** 30],
      ['1T', 2 ** 40],
      ['0x1000', 4096],
      ['0X1f', 31],
      // B is a hex digit: hex takes no unit, so this is 0x1000b.
      ['0x1000B', 0x1000b],
      ['4 KiB', 4096],
      ['  2\tM ', 2 * 2 ** 20],
      ['1.5KiB', 1536],
      ['0.5M', 2 ** 19],
      ['0', 0],
      ['0B', 0],
      [4096, 4096],
      [0, 0],
      [String(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER],
      ['0x1fffffffffffff', Number.MAX_SAFE_INTEGER],
      ['8191T', 8191 * 2 ** 40],
    ];
    for (const [input, expected] of cases) assert.equal(parseSize(input), expected, String(input));
  });

  void it('rejects bad input with a message saying why', () => {
    rejects('-4K', /negative/);
    rejects(-1, /negative/);
    rejects('', /empty/);
    rejects('   ', /empty/);
    rejects('abc', /expected a number/);
    rejects('4 K B', /expected a number/);
    rejects('1e3', /expected a number/);
    rejects('.5K', /expected a number/);
    rejects('+4K', /expected a number/);
    rejects('4XB', /unknown unit "XB"/);
    rejects('4KB', /ambiguous.*KiB/);
    rejects('4mb', /ambiguous.*MiB/);
    rejects('0.1KiB', /whole number/);
    rejects('1.5', /whole number/);
    rejects(1.5, /whole number/);
    rejects(Number.NaN, /finite/);
    rejects(Infinity, /finite/);
    rejects(2 ** 53, /2\^53/);
    rejects('9007199254740992', /2\^53/);
    rejects('8192T', /2\^53/);
    rejects('0x20000000000000', /2\^53/);
    rejects('0x', /hexadecimal/);
    rejects('0x1000K', /hexadecimal/);
    rejects('0x10 KiB', /no unit/);
    assert.throws(() => parseSize(null as unknown as string), SizeError);
  });

  void it('n * unit parses to n * unitBytes, with or without spaces', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...UNITS),
        fc.maxSafeNat(),
        fc.constantFrom('', ' ', '  '),
        ([names, bytes], raw, space) => {
          // Integer division: MAX_SAFE_INTEGER / 2^40 rounds up to 8192 in floating point.
          const n = raw % (Number(BigInt(Number.MAX_SAFE_INTEGER) / BigInt(bytes)) + 1);
          for (const name of names) {
            const text = name === '' ? String(n) : `${n}${space}${name}`;
            assert.equal(parseSize(text), n * bytes, text);
          }
        },
      ),
    );
  });

  void it('exact fractions of a unit are accepted', () => {
    fc.assert(
      fc.property(fc.nat(1_000_000), fc.integer({ min: 1, max: 10 }), (k, j) => {
        // k / 2^j has a finite decimal expansion, so it can be written exactly.
        const text = (k / 2 ** j).toFixed(j);
        assert.equal(parseSize(`${text}KiB`), (k * 1024) / 2 ** j);
      }),
    );
  });
});

void describe('formatSize', () => {
  void it('uses the largest exact binary unit', () => {
    assert.equal(formatSize(0), '0B');
    assert.equal(formatSize(1), '1B');
    assert.equal(formatSize(1000), '1000B');
    assert.equal(formatSize(1024), '1KiB');
    assert.equal(formatSize(4096), '4KiB');
    assert.equal(formatSize(1536), '1536B');
    assert.equal(formatSize(3 * 2 ** 20), '3MiB');
    assert.equal(formatSize(2 ** 30 + 2 ** 20), '1025MiB');
    assert.equal(formatSize(2 ** 40), '1TiB');
    assert.equal(formatSize(2 ** 50), '1024TiB');
    assert.equal(formatSize(Number.MAX_SAFE_INTEGER), `${Number.MAX_SAFE_INTEGER}B`);
  });

  void it('rejects values it cannot format', () => {
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53]) assert.throws(() => formatSize(bad), SizeError);
  });

  void it('round-trips through parseSize', () => {
    const sized = fc.oneof(
      fc.maxSafeNat(),
      fc.tuple(fc.nat(8191), fc.constantFrom(10, 20, 30, 40)).map(([n, s]) => n * 2 ** s),
    );
    fc.assert(
      fc.property(sized, (n) => {
        assert.equal(parseSize(formatSize(n)), n);
      }),
    );
  });
});
