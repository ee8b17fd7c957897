/** The command's warm-up budget for V8's optimiser (src/cli/jit.ts). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { warmUpPlan } from '../../src/cli/jit.ts';

const NODE20_V8 = '11.3.244.8-node.33';

describe('the warm-up budget', () => {
  it("on Node 20's V8: four times the default, then the default", () => {
    assert.deepEqual(warmUpPlan(NODE20_V8, [], ''), { warm: 4 * 67_584, after: 67_584 });
    assert.deepEqual(warmUpPlan(NODE20_V8, ['--conditions=hetmem-source'], '--import tsx'), {
      warm: 4 * 67_584,
      after: 67_584,
    });
  });

  it('leaves a budget the user set alone (command line or NODE_OPTIONS, either spelling)', () => {
    assert.equal(warmUpPlan(NODE20_V8, ['--interrupt-budget=1000'], ''), null);
    assert.equal(warmUpPlan(NODE20_V8, [], '--max-old-space-size=4096 --interrupt_budget=5'), null);
  });

  it('leaves a V8 whose default it does not know alone', () => {
    assert.equal(warmUpPlan('12.4.254.21-node.33', [], ''), null);
    assert.equal(warmUpPlan('', [], ''), null);
  });

  it("the default it puts back is what this node's V8 prints as its default", (t) => {
    const plan = warmUpPlan(process.versions.v8, [], '');
    if (plan === null) {
      t.skip(`no default known for V8 ${process.versions.v8}`);
      return;
    }
    const r = spawnSync(process.execPath, ['--v8-options'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const m = /default: --interrupt-budget=(\d+)/.exec(r.stdout);
    assert.ok(m !== null, 'node --v8-options names no default interrupt budget');
    assert.equal(plan.after, Number(m[1]));
  });
});
