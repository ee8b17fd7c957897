/**
 * An ioctl runs as its caller (`current`): the process that opened the device file. A driver
 * sleeping killable inside the ioctl (wait_event_killable) gives up with -ERESTARTSYS when that
 * process is killed (its exit, the model's fatal signal), in every interleaving of the kill with
 * the ioctl; a sleep that is not killable is not ended by it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { explore } from '../../src/node/explore/index.ts';
import { targetFromParsed } from '../../src/scenario/explore_target.ts';
import { kernel } from '../../src/scenario/kernel.ts';
import { parseScenarioText } from '../../src/scenario/parse.ts';
import { preloadDriver } from '../../src/scenario/runner.ts';

const FILE = fileURLToPath(new URL('../fixtures/inline.yaml', import.meta.url));

const scenario = (op: string, expect: string): string => `version: 1
system: { ram: 16MiB, swap: 0 }
devices:
  gate0:
    driver: { module: drivers/wait_driver.ts, export: waitDriver }
processes: [p]
setup:
  - { op: device_open, device: gate0, proc: p, save: fd }
threads:
  a:
    - { op: ${op}, fd: fd${expect} }
  b:
    - { op: exit, proc: p }
`;

async function exploreText(text: string) {
  const parsed = parseScenarioText(text, FILE);
  await preloadDriver(parsed);
  return explore(targetFromParsed(parsed, kernel()), {
    strategy: 'dfs',
    seed: 1,
    budget: { schedules: 500 },
  });
}

describe('a fatal signal reaches a driver ioctl', () => {
  it('a killable wait in the ioctl ends with -ERESTARTSYS when the caller exits, in every order', async () => {
    const r = await exploreText(scenario('WAIT', ', expect: { errno: ERESTARTSYS }'));
    assert.equal(r.violation, null, r.violation?.message);
    assert.ok(r.exhausted, 'every interleaving ran');
    assert.ok(r.schedules > 1);
  });

  it('a wait that is not killable still sleeps: every thread waits', async () => {
    const r = await exploreText(scenario('HOLD', ''));
    assert.equal(r.violation?.oracle, 'deadlock', r.violation?.message);
  });
});
