/** node:url in the studio. */
export function pathToFileURL(p: string): URL {
  return new URL(`file://${p}`);
}
export function fileURLToPath(u: string | URL): string {
  return new URL(u).pathname;
}
