/**
 * A driver kthread idle for work when the scenario's threads are done is not a deadlock: the
 * teardown unbinds the device and its remove() stops the kthread (kthread_stop). A remove() that
 * does not stop it leaves the kthread asleep after teardown, and that is reported as a deadlock.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { explore } from '../../src/node/explore/index.ts';
import { targetFromParsed } from '../../src/scenario/explore_target.ts';
import { kernel } from '../../src/scenario/kernel.ts';
import { parseScenarioText } from '../../src/scenario/parse.ts';
import { preloadDriver, runScenario } from '../../src/scenario/runner.ts';

const FILE = fileURLToPath(new URL('../fixtures/inline.yaml', import.meta.url));

const scenario = (stop: boolean): string => `version: 1
system: { ram: 16MiB, swap: 0 }
devices:
  scrub0:
    driver: { module: drivers/kthread_driver.ts, export: kthreadDriver }
    config: { stop: ${stop} }
processes: [p]
setup:
  - { op: device_open, device: scrub0, proc: p, save: fd }
threads:
  a:
    - { op: KICK, fd: fd, n: 1 }
  b:
    - { op: KICK, fd: fd, n: 2 }
`;

async function exploreText(text: string, strategy: 'dfs' | 'pct') {
  const parsed = parseScenarioText(text, FILE);
  await preloadDriver(parsed);
  return explore(targetFromParsed(parsed, kernel()), { strategy, seed: 1, budget: { schedules: 200 } });
}

describe('driver kthreads at the end of a scenario', () => {
  it('an idle kthread that remove() stops is no deadlock, in any interleaving', async () => {
    const r = await exploreText(scenario(true), 'dfs');
    assert.equal(r.violation, null, r.violation?.message);
    assert.ok(r.schedules > 1);
  });

  it('a kthread remove() does not stop is a deadlock after teardown, naming it', async () => {
    const r = await exploreText(scenario(false), 'pct');
    assert.equal(r.violation?.oracle, 'deadlock');
    assert.match(
      r.violation.message,
      /scrub0\.scrubber still waits on kthread scrub0\.scrubber after every file was closed, every process exited and every device was removed/,
    );
  });

  it('hetmem run: the stopped kthread leaves a clean teardown; the forgotten one fails it', async () => {
    for (const stop of [true, false]) {
      const text = scenario(stop).replace('threads:\n  a:\n', 'steps:\n').replace('\n  b:\n', '\n');
      const parsed = parseScenarioText(text, FILE);
      await preloadDriver(parsed);
      const { report } = runScenario(parsed, kernel());
      const td = report.steps.at(-1)!;
      assert.equal(td.ok, stop, JSON.stringify(td.failures));
    }
  });
});
