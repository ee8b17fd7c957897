/** node:fs in the studio: there is no file system; scenario text arrives from the page. */
export function readFileSync(path: string): never {
  throw new Error(`cannot read ${path} in the browser`);
}
export function writeFileSync(path: string): never {
  throw new Error(`cannot write ${path} in the browser`);
}
export function openSync(path: string): never {
  throw new Error(`cannot open ${path} in the browser`);
}
export function readSync(): never {
  throw new Error('cannot read a file in the browser');
}
export function closeSync(): void {
  // Nothing was opened.
}
export function existsSync(): boolean {
  return false;
}
