/**
 * System.ioctl()'s caller: a dmirror descriptor mirrors the process that opened it
 * (dmirror->notifier.mm), while the ioctl copies its user buffer (`ptr`) to and from the calling
 * process, as copy_to_user() and copy_from_user() go through current->mm. Both the plain and the
 * generator form of the system call behave alike.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Errno } from '../../../src/kernel/errno.ts';
import {
  HMM_DMIRROR_READ,
  HMM_DMIRROR_WRITE,
  createDmirrorDevice,
  dmirrorOpen,
} from '../../../src/kernel/drivers/test_hmm.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from '../../../src/kernel/mm/mman.ts';
import { type Process, System } from '../../../src/kernel/system.ts';
import { assertOracles } from '../../../src/oracles/index.ts';

const PAGE = 4096;
const NPAGES = 4;
const RW = PROT_READ | PROT_WRITE;
const FLAGS = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
/** The mirrored buffer, in the opener. */
const A = 0x600000000000;
/** The caller's user buffer (`ptr`), mapped only in the caller. */
const Q = 0x610000000000;

function fill(seed: number): Uint8Array {
  return Uint8Array.from({ length: NPAGES * PAGE }, (_, i) => (seed + i) & 0xff);
}

/** The command on the whole buffer, made by `caller`, which must succeed on every page. */
function cmdOk(sys: System, fd: number, name: string, caller: Process): void {
  const arg: Record<string, unknown> = { addr: A, npages: NPAGES, ptr: Q };
  assert.equal(sys.ioctl(fd, name, arg, caller), 0);
  assert.equal(arg.cpages, NPAGES);
}

for (const plainPaths of [true, false]) {
  describe(`an ioctl made by another process than the opener (${plainPaths ? 'plain' : 'generator'} form)`, () => {
    function setup() {
      const sys = new System({ ram: 64 * 1024 * 1024, plainPaths });
      createDmirrorDevice(sys, 'gpu0', 'private');
      const p = sys.createProcess('opener');
      const q = sys.createProcess('caller');
      const fd = sys.run('open', dmirrorOpen(sys, 'gpu0', p));
      assert.ok(fd >= 0);
      assert.equal(sys.mmap(p, A, NPAGES * PAGE, RW, FLAGS), A);
      assert.equal(sys.mmap(q, Q, NPAGES * PAGE, RW, FLAGS), Q);
      assert.equal(sys.write(p, A, fill(1)), NPAGES * PAGE);
      assert.equal(sys.write(q, Q, fill(2)), NPAGES * PAGE);
      return { sys, p, q, fd };
    }

    function finish(sys: System): void {
      for (const fd of [...sys.files.keys()]) assert.equal(sys.close(fd), 0);
      for (const proc of [...sys.processes.values()]) sys.exit(proc);
      assertOracles(sys, { teardown: true });
    }

    it("READ mirrors the opener's memory and copies it into the caller's buffer", () => {
      const { sys, p, q, fd } = setup();
      cmdOk(sys, fd, HMM_DMIRROR_READ, q);
      assert.deepEqual(sys.read(q, Q, NPAGES * PAGE).data, fill(1));
      assert.deepEqual(sys.read(p, A, NPAGES * PAGE).data, fill(1));
      finish(sys);
    });

    it("WRITE takes the data from the caller's buffer and writes the opener's memory", () => {
      const { sys, p, q, fd } = setup();
      cmdOk(sys, fd, HMM_DMIRROR_WRITE, q);
      assert.deepEqual(sys.read(p, A, NPAGES * PAGE).data, fill(2));
      finish(sys);
    });

    it('the same call made as the opener (or as no process) finds no buffer at ptr: -EFAULT', () => {
      const { sys, p, fd } = setup();
      for (const caller of [p, undefined]) {
        const arg: Record<string, unknown> = { addr: A, npages: NPAGES, ptr: Q };
        assert.equal(sys.ioctl(fd, HMM_DMIRROR_READ, arg, caller), -Errno.EFAULT);
        assert.equal(arg.cpages, undefined, 'nothing is copied back on an error');
      }
      finish(sys);
    });
  });
}
