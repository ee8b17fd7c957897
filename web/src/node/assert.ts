/** node:assert/strict in the studio: the conformance cases the public API re-exports are not run here. */
function assert(value: unknown, message?: string): asserts value {
  if (!value) throw new Error(message ?? 'assertion failed');
}
assert.ok = assert;
assert.fail = (message?: string): never => {
  throw new Error(message ?? 'assertion failed');
};
assert.equal = (a: unknown, b: unknown, message?: string): void => {
  if (!Object.is(a, b)) throw new Error(message ?? `${String(a)} !== ${String(b)}`);
};
assert.deepEqual = (a: unknown, b: unknown, message?: string): void => {
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(message ?? 'values differ');
};
export default assert;
