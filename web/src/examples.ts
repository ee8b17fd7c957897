/** The example scenarios, bundled as text under the paths the CLI knows them by. */
const files = import.meta.glob<string>('../../examples/**/*.yaml', {
  query: '?raw',
  import: 'default',
  eager: true,
});

export interface Example {
  /** 'fork-cow', 'races/read-munmap' */
  name: string;
  /** '/examples/fork-cow.yaml': what the worker resolves driver modules against. */
  path: string;
  text: string;
}

export const EXAMPLES: Example[] = Object.entries(files)
  // Sim files are not scenarios: the policy simulation panel (sim.tsx) opens them.
  .filter(([p]) => !p.includes('/examples/sim/'))
  .map(([p, text]) => {
    const path = p.replace(/^(\.\.\/)+/, '/');
    return { name: path.replace(/^\/examples\//, '').replace(/\.yaml$/, ''), path, text };
  })
  .sort(
    (a, b) => Number(a.name.includes('/')) - Number(b.name.includes('/')) || a.name.localeCompare(b.name),
  );

export function exampleByName(name: string): Example | undefined {
  return EXAMPLES.find((e) => e.name === name);
}
