/** node:fs in the studio: there is no file system; scenario text arrives from the page. */
export function readFileSync(path: string): never {
  throw new Error(`cannot read ${path} in the browser`);
}
export function writeFileSync(path: string): never {
  throw new Error(`cannot write ${path} in the browser`);
}
