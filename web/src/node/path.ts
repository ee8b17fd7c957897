/** node:path in the studio: POSIX paths of the bundled examples ('/examples/races/x.yaml'). */
export function dirname(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? (i === 0 ? '/' : '.') : p.slice(0, i);
}

export function resolve(...parts: string[]): string {
  const out: string[] = [];
  for (const part of parts) {
    if (part.startsWith('/')) out.length = 0;
    for (const seg of part.split('/')) {
      if (seg === '' || seg === '.') continue;
      if (seg === '..') out.pop();
      else out.push(seg);
    }
  }
  return `/${out.join('/')}`;
}
