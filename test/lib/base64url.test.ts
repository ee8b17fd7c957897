import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fromBase64Url, toBase64Url } from '../../src/lib/base64url.ts';

test('base64url encodes as Node does and decodes back', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 64 }), (bytes) => {
      const text = toBase64Url(bytes);
      assert.equal(text, Buffer.from(bytes).toString('base64url'));
      assert.deepEqual(fromBase64Url(text), bytes);
    }),
  );
});
