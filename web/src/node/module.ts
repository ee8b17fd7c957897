/** node:module in the studio: driver modules are bundled and registered, never require()d. */
export function createRequire(): (id: string) => never {
  return (id) => {
    throw new Error(`cannot load ${id} in the browser`);
  };
}
