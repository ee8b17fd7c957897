/** The typed arrays that grow() enlarges. */
export type GrowableArray = Int32Array | Uint16Array | Uint8Array | Uint32Array | Float64Array;

/**
 * A typed array of the same kind as `a`, `n` elements long, holding `a`'s elements first and
 * zeroes after them: struct-of-arrays tables grow this way when an index passes their end.
 */
export function grow<A extends GrowableArray>(a: A, n: number): A {
  const Ctor = a.constructor as new (n: number) => A;
  const b = new Ctor(n);
  b.set(a);
  return b;
}
