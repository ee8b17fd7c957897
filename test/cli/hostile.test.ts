/**
 * Hostile input to the command line: each case gets the kernel's errno in the step's result, or
 * one `FILE:LINE:COL: message` line (or `hetmem: ...` for a flag) with exit 2. Never exit 3,
 * never a stack trace, never a run that exhausts memory or time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hetmem, tempFile } from './helpers.ts';

const MMAP =
  '{ op: mmap, proc: p, length: 4KiB, prot: [read, write], flags: [private, anonymous], save: buf }';

function scenario(steps: string[], head = 'processes: [p]'): string {
  return `version: 1\n${head}\nsteps:\n${steps.map((s) => `  - ${s}\n`).join('')}`;
}

/** Runs `hetmem run --json FILE` and returns the errno of each step (null when it succeeded). */
function errnos(text: string): (string | null)[] {
  const r = hetmem(['run', '--json', tempFile('s.yaml', text)]);
  assert.ok(r.status === 0 || r.status === 1, `exit ${r.status}: ${r.stderr}`);
  const j = JSON.parse(r.stdout) as { steps: { section: string; errno: string | null }[] };
  return j.steps.filter((s) => s.section === 'steps').map((s) => s.errno);
}

function usageError(args: string[], message: RegExp): void {
  const r = hetmem(args);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stdout, '', 'nothing printed before the error');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], message);
}

describe('scenario values get the kernel errno', () => {
  it('addr -4096: cpu_read -EFAULT, pagemap -EINVAL', () => {
    const text = scenario([
      '{ op: cpu_read, proc: p, addr: -4096, length: 4096, expect: { errno: EFAULT } }',
      '{ op: pagemap, proc: p, addr: -4096, npages: 1, expect: { errno: EINVAL } }',
    ]);
    assert.deepEqual(errnos(text), ['EFAULT', 'EINVAL']);
  });

  it('addr -4096 on the GPU ops: gpu_access -EFAULT, gpu_snapshot -EINVAL, on uvm and xe', () => {
    const head = `processes: [p]
devices:
  gpu2: { type: uvm, config: { memory: 4MiB } }
  gpu3: { type: xe, config: { vram: 4MiB } }`;
    const text = scenario(
      [
        '{ op: device_open, device: gpu3, proc: p, save: fd }',
        '{ op: DRM_IOCTL_XE_VM_CREATE, fd: fd, flags: DRM_XE_VM_CREATE_FLAG_FAULT_MODE }',
        ...['gpu2', 'gpu3'].flatMap((d) => [
          `{ op: gpu_access, device: ${d}, proc: p, address: -4096, length: 4, access: read, expect: { errno: EFAULT } }`,
          `{ op: gpu_snapshot, device: ${d}, proc: p, addr: -4096, length: 2MiB, expect: { errno: EINVAL } }`,
        ]),
      ],
      head,
    );
    assert.deepEqual(errnos(text), [null, null, 'EFAULT', 'EINVAL', 'EFAULT', 'EINVAL']);
  });

  it('xe userptr binds: 2^47 bytes -ENOMEM (the pfn array), after the process exited -EFAULT', () => {
    const head = `processes: [p, q]
devices:
  gpu3: { type: xe, config: { vram: 4MiB } }`;
    const open = (proc: string, fd: string, vm: string): string[] => [
      `{ op: device_open, device: gpu3, proc: ${proc}, save: ${fd} }`,
      `{ op: DRM_IOCTL_XE_VM_CREATE, fd: ${fd}, flags: DRM_XE_VM_CREATE_FLAG_FAULT_MODE, save: { vm_id: ${vm} } }`,
    ];
    const bind = (fd: string, vm: string, addr: string, range: string, errno: string): string =>
      `{ op: DRM_IOCTL_XE_VM_BIND, fd: ${fd}, vm_id: ${vm}, bind_op: DRM_XE_VM_BIND_OP_MAP_USERPTR, addr: ${addr}, range: ${range}, userptr: ${addr}, expect: { errno: ${errno} } }`;
    const text = scenario(
      [
        MMAP.replace('proc: p', 'proc: q'),
        ...open('p', 'f', 'v'),
        bind('f', 'v', '0x10000000', '140737488355328', 'ENOMEM'),
        ...open('q', 'g', 'w'),
        '{ op: exit, proc: q }',
        bind('g', 'w', 'buf', '4096', 'EFAULT'),
      ],
      head,
    );
    assert.deepEqual(errnos(text), [null, null, null, 'ENOMEM', null, null, null, 'EFAULT']);
  });

  it('length 2^53-1 on cpu_read and cpu_write: -EFAULT', () => {
    const text = scenario([
      MMAP,
      '{ op: cpu_read, proc: p, addr: buf, length: 9007199254740991, expect: { errno: EFAULT } }',
      '{ op: cpu_write, proc: p, addr: buf, length: 9007199254740991, data: { fill: 1 }, expect: { errno: EFAULT } }',
      // The bytes before the fault are stored, as a store loop leaves them.
      '{ op: cpu_read, proc: p, addr: buf, length: 4, expect: { data: { bytes: [1, 1, 1, 1] } } }',
    ]);
    assert.deepEqual(errnos(text), [null, 'EFAULT', 'EFAULT', null]);
  });

  it('pread of 1TiB from a short file returns what the file holds', () => {
    const text = scenario([
      '{ op: memfd_create, save: m }',
      '{ op: pwrite, fd: m, length: 8KiB, data: { fill: 1 } }',
      '{ op: pread, fd: m, length: 1099511627776, offset: 4096, expect: { ret: 4096, data: { fill: 1 } } }',
    ]);
    assert.deepEqual(errnos(text), [null, null, null]);
  });

  it('HMM_DMIRROR_READ npages 1e12: -ENOMEM (the bounce buffer)', () => {
    const text = scenario(
      [
        MMAP,
        '{ op: dmirror_open, device: gpu0, proc: p, save: fd }',
        '{ op: HMM_DMIRROR_READ, fd: fd, addr: buf, npages: 1000000000000, expect: { errno: ENOMEM } }',
        '{ op: HMM_DMIRROR_CHECK_EXCLUSIVE, fd: fd, addr: buf, npages: 1000000000000 }',
      ],
      'devices: { gpu0: { type: dmirror, memory: private } }\nprocesses: [p]',
    );
    assert.deepEqual(errnos(text), [null, null, 'ENOMEM', null]);
  });

  it('legacy_mirror fault and read of a negative, wrapping or unmapped range: an errno', () => {
    const text = scenario(
      [
        MMAP,
        '{ op: legacy_mirror_open, device: gpu0, proc: p, save: fd }',
        '{ op: legacy_mirror_read, fd: fd, addr: -4096, npages: 2, expect: { errno: EINVAL } }',
        '{ op: legacy_mirror_fault, fd: fd, addr: -4096, npages: 2, expect: { errno: EINVAL } }',
        '{ op: legacy_mirror_fault, fd: fd, addr: buf, npages: 4503599627370495, expect: { errno: EINVAL } }',
        '{ op: legacy_mirror_fault, fd: fd, addr: buf, npages: 1099511627776, expect: { errno: EFAULT } }',
        '{ op: legacy_mirror_read, fd: fd, addr: buf, npages: 1, expect: { ret: 0 } }',
      ],
      'devices: { gpu0: { type: legacy_mirror } }\nprocesses: [p]',
    );
    assert.deepEqual(errnos(text), [null, null, 'EINVAL', 'EINVAL', 'EINVAL', 'EFAULT', null]);
  });

  it('a 1TiB populated mmap fails fast with -ENOMEM, with or without MAP_NORESERVE', () => {
    const text = scenario([
      '{ op: mmap, proc: p, length: 1TiB, prot: [read, write], flags: [private, anonymous, populate], expect: { errno: ENOMEM } }',
      '{ op: mmap, proc: p, length: 1TiB, prot: [read, write], flags: [private, anonymous, populate, noreserve], expect: { errno: ENOMEM } }',
      '{ op: mmap, proc: p, length: 1TiB, prot: [read, write], flags: [private, anonymous, noreserve] }',
    ]);
    assert.deepEqual(errnos(text), ['ENOMEM', 'ENOMEM', null]);
  });
});

describe('scenario values out of the model reach: one line, exit 2', () => {
  const cases: { name: string; text: string; message: RegExp }[] = [
    {
      name: 'ram: 0',
      text: scenario([MMAP], 'system: { ram: 0 }\nprocesses: [p]'),
      message: /:2:16: system\.ram: 0 bytes is below the least the model runs with, 8MiB$/,
    },
    {
      name: 'ram: 16TiB',
      text: scenario([MMAP], 'system: { ram: 16TiB }\nprocesses: [p]'),
      message: /:2:16: system\.ram: .* is above the most the model holds, 16GiB$/,
    },
    {
      name: 'pagemap npages 2^53-1',
      text: scenario([MMAP, '{ op: pagemap, proc: p, addr: buf, npages: 9007199254740991 }']),
      message: /:5:5: pagemap of 9007199254740991 pages is above the 1048576 a step may read; split it$/,
    },
    {
      name: 'pwrite of 1TiB',
      text: scenario([
        '{ op: memfd_create, save: m }',
        '{ op: pwrite, fd: m, length: 1099511627776, data: { fill: 1 } }',
      ]),
      message: /:5:5: a write of 1099511627776 bytes is above the 256MiB a step may move; split it$/,
    },
    {
      name: 'pread of 1TiB from a 1TiB file',
      text: scenario([
        '{ op: memfd_create, save: m }',
        '{ op: ftruncate, fd: m, length: 1099511627776 }',
        '{ op: pread, fd: m, length: 1099511627776, offset: 4096 }',
      ]),
      message: /:6:5: a read of 1099511623680 bytes is above the 256MiB a step may move; split it$/,
    },
    {
      name: 'legacy_mirror_read of 2^52 - 1 pages',
      text: scenario(
        [
          MMAP,
          '{ op: legacy_mirror_open, device: gpu0, proc: p, save: fd }',
          '{ op: legacy_mirror_read, fd: fd, addr: buf, npages: 4503599627370495 }',
        ],
        'devices: { gpu0: { type: legacy_mirror } }\nprocesses: [p]',
      ),
      message:
        /:7:5: legacy_mirror_read of 4503599627370495 pages is above the 256MiB a step may move; split it$/,
    },
    {
      name: 'fork into an existing process',
      text: scenario(['{ op: fork, proc: p, child: q }'], 'processes: [p, q]'),
      message: /:4:5: child 'q' is already a process; give the child a new name$/,
    },
    {
      name: 'prot: [read, fly]',
      text: scenario(['{ op: mmap, proc: p, length: 4KiB, prot: [read, fly], flags: [private, anonymous] }']),
      message: /:4:53: field 'prot': 'fly' is not one of none, read, write, exec$/,
    },
    {
      // A name where the op takes one of a few: the field is blamed, not the op (which a driver
      // ioctl would name).
      name: 'fcntl cmd: set_seals',
      text: scenario(['{ op: memfd_create, save: m }', '{ op: fcntl, fd: m, cmd: set_seals }']),
      message:
        /:5:30: field 'cmd': 'set_seals' is not one of add_seals, get_seals \(did you mean 'get_seals'\?\)$/,
    },
    {
      name: 'version: "1"',
      text: 'version: "1"\nprocesses: [p]\nsteps: []\n',
      message: /:1:10: field 'version': expected the number 1, got the string '1' \(drop the quotes\)$/,
    },
    {
      name: 'a scenario with too many steps',
      text: scenario(Array.from({ length: 50_001 }, () => '{ op: check }')),
      message: /:1:1: 50001 steps; a scenario has at most 50000$/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = hetmem(['run', tempFile('s.yaml', c.text)]);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.match(r.stderr.trimEnd(), c.message);
    });
  }

  it('/dev/zero as a scenario is refused by size', () => {
    usageError(['run', '/dev/zero'], /^\/dev\/zero:1:1: the file is larger than 4 MiB; split it$/);
  });
});

describe('flags', () => {
  it('--seed above 2^53 is a usage error', () => {
    usageError(
      ['run', '--seed', '100000000000000000000000'],
      /^hetmem: --seed takes an integer from 0 to 2\^53-1/,
    );
    usageError(['run', '--seed', '1e23'], /^hetmem: --seed takes an integer/);
  });

  it('--trace to an unwritable path fails before the run', () => {
    usageError(
      ['run', '--trace', '/nonexistent-dir/t.json'],
      /^hetmem: --trace: cannot write '\/nonexistent-dir\/t.json' \(ENOENT\)$/,
    );
    usageError(
      ['explore', 'examples/races/read-munmap.yaml', '--trace', '/nonexistent-dir/t.json'],
      /^hetmem: --trace: cannot write/,
    );
  });

  it('--workers 1000 runs with as many workers as cores', () => {
    const r = hetmem([
      'explore',
      'examples/races/read-munmap.yaml',
      '--budget',
      '4',
      '--workers',
      '1000',
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { schedules: number }).schedules, 4);
  });
});

describe('replay tokens and budgets', () => {
  it('a token from another scenario is a usage error; its own scenario replays it', () => {
    const found = hetmem(['explore', 'examples/races/no-read-retry.yaml', '--json']);
    const token = (JSON.parse(found.stdout) as { replay: string }).replay;
    assert.match(token, /~[0-9a-z]+$/);
    usageError(
      ['explore', 'examples/races/read-munmap.yaml', '--replay', token],
      /^hetmem: --replay: the token was made for another scenario/,
    );
    // Without the fingerprint, a token naming choices the schedule never reaches is refused too.
    usageError(
      ['explore', 'examples/races/iommufd-map-attach.yaml', '--replay', token.split('~')[0]],
      /^hetmem: --replay: the token does not fit this scenario \(it names choice 9, the schedule has \d+\)/,
    );
    const again = hetmem(['explore', 'examples/races/no-read-retry.yaml', '--replay', token, '--json']);
    // The race corpus declares `explore: { expect: found }`: a replayed violation is exit 0.
    assert.ok(again.status === 0 || again.status === 1, again.stderr);
    assert.notEqual((JSON.parse(again.stdout) as { violation: unknown }).violation, null);
  });

  it('--budget 0 is a usage error', () => {
    usageError(
      ['explore', 'examples/races/read-munmap.yaml', '--budget', '0'],
      /^hetmem: --budget: a schedule count is a positive integer, got '0'$/,
    );
  });
});

describe('bench', () => {
  it('--smoke exits 0 when every benchmark ran: small sizes do not judge the goals', () => {
    const r = hetmem(['bench', '--smoke', '--json', '--filter', 'memory.bytes_per_resident_page']);
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { figures: unknown[]; judged: boolean };
    assert.equal(doc.judged, false);
    assert.equal(doc.figures.length, 1);
  });

  it('a --filter that matches no figure is a usage error naming the suites, not an empty run', () => {
    const r = hetmem(['bench', '--smoke', '--json', '--filter', 'explorer']);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /--filter 'explorer' matches no benchmark figure/);
    assert.match(lines[0], /\(faults, notifier, hmm, iommufd, explore, memory, api, cli, gpu, sim\)/);
  });
});

describe('what run shows', () => {
  it('cpu_read data and pagemap bits, in text and --json', () => {
    const file = tempFile(
      's.yaml',
      scenario([
        '{ op: mmap, proc: p, length: 8KiB, prot: [read, write], flags: [private, anonymous], save: buf }',
        '{ op: cpu_write, proc: p, addr: buf, length: 4KiB, data: { fill: 0xab } }',
        '{ op: cpu_read, proc: p, addr: buf, length: 4KiB }',
        '{ op: pagemap, proc: p, addr: buf, npages: 2 }',
      ]),
    );
    const text = hetmem(['run', file]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /data 4096 bytes: every byte 0xab/);
    assert.match(text.stdout, /page 0: present ram soft-dirty exclusive/);
    assert.match(text.stdout, /page 1: none soft-dirty/);
    const json = hetmem(['run', '--json', file]);
    const steps = (JSON.parse(json.stdout) as { steps: { data?: unknown; pages?: unknown }[] }).steps;
    assert.deepEqual(steps[2].data, { length: 4096, head: 'ab'.repeat(32), uniform: 0xab });
    assert.deepEqual(steps[3].pages, [
      {
        first: 0,
        count: 1,
        present: true,
        swap: false,
        soft_dirty: true,
        exclusive: true,
        file: false,
        thp: false,
        kind: 'ram',
      },
      {
        first: 1,
        count: 1,
        present: false,
        swap: false,
        soft_dirty: true,
        exclusive: false,
        file: false,
        thp: false,
        kind: 'none',
      },
    ]);
  });

  it('a short bytes list says the rest of the read is compared with 0', () => {
    const file = tempFile(
      's.yaml',
      scenario([
        MMAP,
        '{ op: cpu_write, proc: p, addr: buf, length: 4KiB, data: { fill: 1 } }',
        '{ op: cpu_read, proc: p, addr: buf, length: 4KiB, expect: { data: { bytes: [1, 1] } } }',
      ]),
    );
    const r = hetmem(['run', file]);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /bytes lists 2 of the 4096 bytes read; the rest must be 0/);
  });
});
