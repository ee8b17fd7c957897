import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  boundDriver,
  CallbackBoundError,
  checkDriverExport,
  loadIssue,
  MIRROR_DRIVER_SHAPE,
  renderDriverIssue,
} from '../../src/scenario/driver_module.ts';

const check = (mod: Record<string, unknown>, name = 'drv') =>
  checkDriverExport('./d.ts', mod, name, MIRROR_DRIVER_SHAPE);

describe('driver module validation', () => {
  it('accepts a driver with some of the members', () => {
    assert.equal(check({ drv: { *rangeFault() {} } }), null);
  });

  it('names a missing export and what the module exports', () => {
    const i = check({ driver: {} }, 'drvier');
    assert.deepEqual(i, { code: 'missing_export', module: './d.ts', path: ['drvier'], exports: ['driver'] });
    assert.match(renderDriverIssue(i), /no export 'drvier' \(did you mean 'driver'\?\); it exports driver/);
  });

  it('refuses a value that is not an object, and an empty object', () => {
    assert.equal(check({ drv: () => 0 })?.code, 'not_an_object');
    assert.equal(check({ drv: [] })?.code, 'not_an_object');
    assert.equal(check({ drv: {} })?.code, 'empty_driver');
  });

  it('refuses an unknown or misspelt member, naming it', () => {
    const i = check({ drv: { rangeFault() {}, invalidte() {} } });
    assert.deepEqual(i?.code, 'unknown_member');
    assert.deepEqual(i?.path, ['drv', 'invalidte']);
    assert.match(
      renderDriverIssue(i),
      /'drv\.invalidte' is not a driver member \(did you mean 'invalidate'\?\)/,
    );
  });

  it('refuses a member of the wrong type', () => {
    const i = check({ drv: { invalidate: 'yes' } });
    assert.equal(i?.code, 'wrong_member_type');
    assert.deepEqual(i?.path, ['drv', 'invalidate']);
  });

  it('tells a missing module from one that fails inside', () => {
    const gone = Object.assign(new Error("Cannot find module '/x/d.ts'"), { code: 'MODULE_NOT_FOUND' });
    assert.equal(loadIssue('./d.ts', '/x/d.ts', gone).code, 'module_not_found');
    const dep = Object.assign(new Error("Cannot find module 'left-pad'"), { code: 'MODULE_NOT_FOUND' });
    assert.equal(loadIssue('./d.ts', '/x/d.ts', dep).code, 'module_threw');
  });

  it('stops a callback that keeps yielding at the yield bound', () => {
    const drv = boundDriver(
      './d.ts',
      'drv',
      {
        *rangeFault(): Generator<number, number> {
          for (;;) yield 1;
        },
      },
      50,
    );
    const g = drv.rangeFault();
    assert.throws(
      () => {
        for (let i = 0; i < 100; i++) g.next();
      },
      (e: unknown) => e instanceof CallbackBoundError && e.issue.code === 'callback_yield_bound',
    );
  });

  it('passes what a bounded callback yields, receives and returns', () => {
    const drv = boundDriver('./d.ts', 'drv', {
      *rangeFault(): Generator<string, number, number> {
        const a = yield 'x';
        return a + 1;
      },
      plain: (n: number) => n * 2,
    });
    const g = drv.rangeFault();
    assert.deepEqual(g.next(), { value: 'x', done: false });
    assert.deepEqual(g.next(41), { value: 42, done: true });
    assert.equal(drv.plain(4), 8);
  });
});
