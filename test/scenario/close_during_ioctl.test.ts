/**
 * close() of a device file while another thread of the process is inside an ioctl on it: the
 * ioctl holds the file (fdget), so close() only drops the descriptor and the driver's release runs
 * when the ioctl puts the file. The dmirror's release removes its interval notifier; run beside
 * the ioctl, it would free the notifier the ioctl's fault loop is still reading.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { explore } from '../../src/node/explore/index.ts';
import { targetFromParsed } from '../../src/scenario/explore_target.ts';
import { kernel } from '../../src/scenario/kernel.ts';
import { parseScenarioText } from '../../src/scenario/parse.ts';

const FILE = fileURLToPath(new URL('../fixtures/inline.yaml', import.meta.url));

const SCENARIO = `version: 1
system: { ram: 16MiB, swap: 0 }
devices:
  gpu0: { type: dmirror }
processes: [p]
setup:
  - { op: mmap, proc: p, length: 16KiB, prot: [read, write], flags: [private, anonymous], save: buf }
  - { op: dmirror_open, device: gpu0, proc: p, save: fd }
threads:
  a:
    - { op: dmirror_close, fd: fd }
  b:
    - op: HMM_DMIRROR_WRITE
      fd: fd
      addr: buf
      npages: 4
      data: { fill: 7 }
      expect: { any: [{ ret: 0 }, { errno: EBADF }] }
final:
  - { op: check }
`;

describe('close() during an ioctl on the same file', () => {
  it('the release waits for the ioctl to put the file, in every interleaving', () => {
    const r = explore(targetFromParsed(parseScenarioText(SCENARIO, FILE), kernel()), {
      strategy: 'dfs',
      seed: 1,
      budget: { schedules: 2000 },
    });
    assert.equal(r.violation, null, r.violation?.message);
    assert.ok(r.exhausted, 'every interleaving ran');
    assert.ok(r.schedules > 1);
  });
});
