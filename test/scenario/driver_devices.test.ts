/**
 * Devices of user drivers in scenario files: the ops their ioctls become, and the one-line
 * FILE:LINE:COL errors a bad driver device or driver-ioctl step gets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { kernel } from '../../src/scenario/kernel.ts';
import { parseScenarioText, ScenarioError } from '../../src/scenario/parse.ts';
import { preloadDriver, runScenario } from '../../src/scenario/runner.ts';

const RACES = fileURLToPath(new URL('../../examples/races/', import.meta.url));
const FILE = `${RACES}inline.yaml`;

const head = (device: string): string => `version: 1
system: { ram: 16MiB, swap: 0 }
devices:
  gpu0: ${device}
processes: [p]
`;
const DEVICE = '{ driver: { module: drivers/devmem_driver.ts, export: devmemDriver } }';

async function run(text: string): Promise<ReturnType<typeof runScenario>['report']> {
  const parsed = parseScenarioText(text, FILE);
  await preloadDriver(parsed);
  return runScenario(parsed, kernel()).report;
}

async function fails(text: string): Promise<ScenarioError> {
  try {
    await run(text);
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
  assert.fail('the scenario was accepted');
}

describe('scenario: devices of user drivers', () => {
  it('device_open and the driver ioctls run as ops; out members are outputs; remove runs at teardown', async () => {
    const r = await run(`${head(DEVICE)}steps:
  - { op: mmap, proc: p, length: 4KiB, prot: [read, write], flags: [private, anonymous], save: buf }
  - { op: cpu_write, proc: p, addr: buf, length: 4KiB, data: { pattern: index32 } }
  - { op: device_open, device: gpu0, proc: p, save: fd }
  - { op: GPU_MIGRATE, fd: fd, addr: buf, npages: 1, expect: { ret: 0, cpages: 1 } }
  - { op: GPU_READ, fd: fd, addr: "buf+12", expect: { value: 3 } }
  - { op: GPU_READ, fd: fd, addr: "buf+4KiB", expect: { errno: EFAULT } }
  - { op: GPU_MIGRATE, fd: fd, addr: "buf+1", npages: 1, expect: { errno: EINVAL } }
`);
    assert.equal(r.ok, true, JSON.stringify(r.steps.filter((s) => !s.ok)));
    const td = r.steps.at(-1)!;
    assert.ok(td.notes.includes('removed gpu0'), td.notes.join(', '));
  });

  it('an ioctl no driver defines is an unknown op at its position', async () => {
    const e = await fails(`${head(DEVICE)}steps:
  - { op: device_open, device: gpu0, proc: p, save: fd }
  - { op: GPU_REED, fd: fd, addr: 0 }
`);
    assert.equal(e.line, 8);
    assert.match(e.message, /unknown op 'GPU_REED' \(did you mean 'GPU_READ'\?\)/);
  });

  it('a field the ioctl struct lacks is an unknown field at its position', async () => {
    const e = await fails(`${head(DEVICE)}steps:
  - { op: device_open, device: gpu0, proc: p, save: fd }
  - { op: GPU_READ, fd: fd, adr: 0 }
`);
    assert.equal(e.line, 8);
    assert.match(e.message, /unknown field 'adr' in GPU_READ step \(did you mean 'addr'\?\)/);
  });

  it('a driver module that does not exist, or lacks the export, is one line at the driver map', async () => {
    const missing = await fails(`${head('{ driver: { module: drivers/nope.ts, export: x } }')}steps: []\n`);
    assert.match(missing.message, /driver module drivers\/nope\.ts/);
    assert.equal(missing.line, 4);
    const noExport = await fails(
      `${head('{ driver: { module: drivers/devmem_driver.ts, export: nope } }')}steps: []\n`,
    );
    assert.match(noExport.message, /'nope'/);
  });

  it('an export that is not a driver (no probe) is a missing_op error', async () => {
    const e = await fails(
      `${head('{ driver: { module: drivers/interval_mirror_driver.ts, export: intervalDriver } }')}steps: []\n`,
    );
    assert.match(e.message, /intervalDriver\.(probe|name): the driver must implement this callback/);
  });
});
