/**
 * The studio's policy simulation panel in chromium: a sim file runs in its own Web Worker and
 * its charts are the ones `hetmem sim --plot` draws, rendered by Vega in the page.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { hetmem, tempFile } from '../cli/helpers.ts';
import { useStudio } from './browser.ts';

const SWEEP = 'version: 1\ngpu_memory: 4MiB\nsweep:\n  policy: [ondemand, tree]\n  footprint: [2MiB, 6MiB]\n';

/** Types a sim file into the panel, runs it and waits for its chart. */
async function runSim(page: Page, text: string): Promise<void> {
  await page.getByLabel('Sim file text').fill(text);
  await page.getByRole('button', { name: 'Run sim' }).click();
  await page.waitForSelector('[data-testid="sim-chart"][data-drawn="true"]', { timeout: 300_000 });
}

/** The texts of the chart's elements of one Vega role, e.g. 'role-axis-title'. */
async function texts(page: Page, cls: string): Promise<string[]> {
  return page.locator(`[data-testid="sim-chart"] g.${cls} text`).allTextContents();
}

const chart = (page: Page, sel: string): Promise<number> =>
  page.locator(`[data-testid="sim-chart"] ${sel}`).count();

describe('the studio charts hetmem sim results', { timeout: 600_000 }, () => {
  const { open, done } = useStudio(['examples/fork-cow.yaml']);

  it('a run charts its counters over the fault batches, with the numbers hetmem sim prints', async () => {
    const w = await open();
    const { page } = w;
    await runSim(page, 'version: 1\nfootprint: 4MiB\ngpu_memory: 2MiB\npolicy: ondemand\n');
    const titles = await texts(page, 'role-axis-title');
    assert.deepEqual(titles, [
      'fault batch',
      'faults serviced',
      'fault batch',
      'pages migrated',
      'fault batch',
      'evictions (2 MiB chunks)',
      'fault batch',
      'GPU-resident MiB',
      'fault batch',
      'modelled time (us)',
    ]);
    assert.equal(await chart(page, 'g.mark-line.role-mark'), 6);
    assert.deepEqual(await texts(page, 'role-legend-label'), ['to GPU', 'to CPU']);
    const cli = hetmem([
      'sim',
      '--footprint',
      '4MiB',
      '--gpu-memory',
      '2MiB',
      '--policy',
      'ondemand',
      '--json',
    ]);
    const j = JSON.parse(cli.stdout) as Record<string, number>;
    assert.ok(j.evictions > 0);
    const [subtitle] = await texts(page, 'role-title-subtitle');
    assert.equal(
      subtitle,
      `${j.faults} faults, ${j.batches} batches, ${j.evictions} evictions, ${j.time_us} us modelled (uvmsmart)`,
    );
    assert.equal(await page.getByTestId('sim-status').textContent(), '1 run');
    assert.equal(await page.getByTestId('sim-table').count(), 0, 'one run has no sweep table');
    await done(w);
  });

  it('a sweep charts its grid: one line per policy across the footprints', async () => {
    const w = await open();
    const { page } = w;
    await runSim(page, SWEEP);
    const titles = await texts(page, 'role-axis-title');
    assert.deepEqual(titles, [
      'footprint',
      'faults',
      'footprint',
      'modelled time (us)',
      'footprint',
      'evictions (2 MiB chunks)',
    ]);
    assert.deepEqual(await texts(page, 'role-legend-label'), ['ondemand', 'tree']);
    assert.equal(await chart(page, 'g.mark-line.role-mark'), 6);
    assert.equal(await chart(page, 'g.mark-symbol.role-mark path'), 3 * 4);
    assert.equal(await page.getByTestId('sim-status').textContent(), '4 runs');
    await done(w);
  });

  it("a sweep's points run on up to hardwareConcurrency workers; its table is the one hetmem sim prints", async () => {
    const w = await open();
    const { page } = w;
    await runSim(page, SWEEP);
    const cores = await page.evaluate<number>('navigator.hardwareConcurrency');
    assert.equal(
      await page.getByTestId('sim-status').getAttribute('data-workers'),
      String(Math.min(cores, 4)),
    );
    const cli = hetmem(['sim', tempFile('sweep.yaml', SWEEP)]);
    assert.equal(cli.status, 0, cli.stderr);
    const table = await page.getByTestId('sim-table').textContent();
    assert.equal(table, cli.stdout.trimEnd());
    assert.equal(table?.split('\n').length, 1 + 4, 'a header and a row per point');
    await done(w);
  });

  it('opens the sim examples; a bad sim file is FILE:LINE:COL; sim files are not scenarios', async () => {
    const w = await open('?sim=prefetchers');
    const { page } = w;
    assert.match(
      await page.getByLabel('Sim file text').inputValue(),
      /policy: \[ondemand, random4k, seq64k, tree\]/,
    );
    assert.equal(await page.getByLabel('Sim preset').inputValue(), 'prefetchers');
    const scenarios = await page.getByLabel('Example', { exact: true }).locator('option').allTextContents();
    assert.ok(scenarios.includes('fork-cow'));
    assert.ok(!scenarios.some((s) => s.startsWith('sim/')), scenarios.join(' '));
    await page.getByLabel('Sim file text').fill('version: 1\nwarps: -1\n');
    await page.getByRole('button', { name: 'Run sim' }).click();
    await page.getByTestId('sim-issue').waitFor();
    assert.equal(
      await page.getByTestId('sim-issue').textContent(),
      'prefetchers.yaml:2:8: warps takes an integer >= 1',
    );
    await done(w);
  });
});
