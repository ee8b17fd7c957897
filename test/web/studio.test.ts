/**
 * The studio in a real browser (Debian's chromium through playwright-core), served by
 * `hetmem studio` from the production build. Each test opens its own page and ends by checking
 * that the page logged no console error or warning.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { Locator, Page } from 'playwright-core';
import type { ChromeTrace } from '../../src/cli/trace.ts';
import { hetmem, ROOT, tempFile } from '../cli/helpers.ts';
import { atStep, ready, shownStep, useStudio } from './browser.ts';

interface CliStep {
  op: string;
  ret: number;
  errno: string | null;
  counters: Record<string, number>;
}

function cliRun(file: string): CliStep[] {
  const r = hetmem(['run', file, '--json']);
  return (JSON.parse(r.stdout) as { steps: CliStep[] }).steps;
}

const EXAMPLES = readdirSync(`${ROOT}examples`)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => f.replace(/\.yaml$/, ''));
const RACES = readdirSync(`${ROOT}examples/races`)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => `races/${f.replace(/\.yaml$/, '')}`);

/** What the page shows for the current step: op, and ret or errno. */
async function shownReport(page: Page): Promise<{ op: string; ret: string }> {
  return {
    op: (await page.getByTestId('report-op').textContent()) ?? '',
    ret: (await page.getByTestId('report-ret').textContent()) ?? '',
  };
}

/** The trace the Trace JSON button downloads. */
async function exportedTrace(page: Page): Promise<ChromeTrace> {
  const [json] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Trace JSON' }).click(),
  ]);
  return JSON.parse(readFileSync(await json.path(), 'utf8')) as ChromeTrace;
}

/** Replaces the editor's text as a paste would. */
async function setEditorText(page: Page, text: string): Promise<void> {
  await page.locator('.cm-content').click();
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(text);
}

/** The class attribute of every element a locator matches. */
async function classes(loc: Locator): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < (await loc.count()); i++) out.push((await loc.nth(i).getAttribute('class')) ?? '');
  return out;
}

const cliRet = (s: CliStep): string => (s.errno !== null ? `-${s.errno}` : `ret ${s.ret}`);

describe('hetmem studio in chromium', { timeout: 600_000 }, () => {
  const studio = useStudio(['examples/fork-cow.yaml']);
  const { open, done } = studio;

  it('serves the app and the scenario given on the command line', async () => {
    const res = await fetch(studio.url);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /<div id="app">/);
    const sc = (await (await fetch(`${studio.url}scenario.json`)).json()) as { name: string; text: string };
    assert.equal(sc.name, 'fork-cow.yaml');
    const w = await open();
    const steps = cliRun('examples/fork-cow.yaml');
    assert.equal(await w.page.getByTestId('step-total').textContent(), `/ ${steps.length}`);
    assert.equal(await w.page.getByTestId('outline').locator('li').count(), steps.length);
    assert.equal(await w.page.title(), 'hetmem studio');
    await done(w);
  });

  for (const name of EXAMPLES) {
    it(`example ${name} loads and runs to its end as hetmem run does`, async () => {
      const steps = cliRun(`examples/${name}.yaml`);
      const w = await open(`?example=${name}`);
      assert.equal(await w.page.getByTestId('step-total').textContent(), `/ ${steps.length}`);
      await w.page.keyboard.press('End');
      await atStep(w.page, steps.length);
      assert.deepEqual(await shownReport(w.page), { op: 'teardown', ret: cliRet(steps.at(-1)!) });
      assert.equal(await w.page.getByTestId('issue').count(), 0);
      await done(w);
    });
  }

  it('every race example loads, and each replays a schedule of its threads', async () => {
    const w = await open(`?example=${RACES[0]}`);
    for (const name of RACES) {
      await w.page.getByLabel('Example').selectOption(name);
      await w.page.waitForFunction(`location.search.includes('example=${encodeURIComponent(name)}')`);
      await ready(w.page);
      assert.equal(await w.page.getByTestId('issue').count(), 0, name);
      assert.ok(await w.page.locator('#race').isVisible(), `${name} shows the race panel`);
    }
    await done(w);
  });

  for (const name of ['fork-cow', 'dmirror-mirror']) {
    it(`${name}: stepping forward and back shows what hetmem run reports at each step`, async () => {
      const steps = cliRun(`examples/${name}.yaml`);
      const w = await open(`?example=${name}`);
      await w.page.locator('body').click({ position: { x: 1200, y: 10 } });
      for (let i = 1; i <= steps.length; i++) {
        await w.page.keyboard.press('ArrowRight');
        await atStep(w.page, i);
        assert.deepEqual(
          await shownReport(w.page),
          { op: steps[i - 1].op, ret: cliRet(steps[i - 1]) },
          `step ${i}`,
        );
      }
      for (let i = steps.length - 1; i >= 1; i -= 3) {
        await w.page.getByTestId('step-input').fill(String(i));
        await w.page.getByTestId('step-input').press('Enter');
        await atStep(w.page, i);
        assert.deepEqual(
          await shownReport(w.page),
          { op: steps[i - 1].op, ret: cliRet(steps[i - 1]) },
          `back to ${i}`,
        );
      }
      await done(w);
    });
  }

  it('time travel in a long run: jumps, back and forward restore the nearest checkpoint and show what hetmem run reports', async () => {
    const name = 'iommufd-dirty-tracking';
    const steps = cliRun(`examples/${name}.yaml`);
    assert.ok(steps.length > 3 * 8, 'long enough for several checkpoints');
    const w = await open(`?example=${name}`);
    const page = w.page;
    const expectStep = async (n: number, how: string): Promise<void> => {
      await atStep(page, n);
      const want = steps[n - 1];
      assert.deepEqual(await shownReport(page), { op: want.op, ret: cliRet(want) }, `${how} ${n}`);
      const chips = page.getByTestId('report-counters').locator('.chip');
      const shown = (await chips.count()) > 0 ? await chips.allTextContents() : [];
      assert.deepEqual(
        shown,
        Object.entries(want.counters).map(([k, v]) => `${k} ${v > 0 ? `+${v}` : v}`),
        `${how} ${n}: counters`,
      );
    };
    /** From which step the model ran to get here, and how many steps it ran (0: restored as is). */
    const travel = async (): Promise<[number, number]> => {
      const t = page.getByTestId('travel');
      if ((await t.count()) === 0) return [-1, 0];
      return [Number(await t.getAttribute('data-from')), Number(await t.getAttribute('data-replayed'))];
    };
    await page.locator('body').click({ position: { x: 1200, y: 10 } });
    await page.keyboard.press('End');
    await expectStep(steps.length, 'end');
    for (const n of [20, 3, 25, 9, 17]) {
      await page.getByTestId('step-input').fill(String(n));
      await page.getByTestId('step-input').press('Enter');
      await expectStep(n, 'jump to');
      const [from, replayed] = await travel();
      assert.equal(from, n - (n % 8), `jump to ${n} starts at the checkpoint before it`);
      assert.equal(replayed, n % 8);
    }
    await page.locator('body').click({ position: { x: 1200, y: 10 } });
    await page.keyboard.press('ArrowLeft');
    await expectStep(16, 'back to');
    assert.deepEqual(await travel(), [-1, 0], 'step 16 is a checkpoint: nothing runs');
    await page.keyboard.press('ArrowLeft');
    await expectStep(15, 'back to');
    assert.deepEqual(await travel(), [8, 7]);
    await page.keyboard.press('ArrowRight');
    await expectStep(16, 'forward to');
    assert.deepEqual(await travel(), [-1, 0], 'forward onto a checkpoint restores it');
    await page.keyboard.press('ArrowRight');
    await expectStep(17, 'forward to');
    assert.deepEqual(await travel(), [16, 1], 'forward runs one step from where it was');
    await done(w);
  });

  it('fork-cow: after fork the page tables show both processes on the same read-only frames', async () => {
    const w = await open('?example=fork-cow&step=4');
    assert.equal(await shownStep(w.page), 4);
    const table = w.page.getByTestId('pt-table');
    const parentPfns = await table.locator('tbody tr td:nth-child(4)').allTextContents();
    const bits = await classes(table.locator('tbody tr .bits span:first-child'));
    assert.equal(parentPfns.length, 8);
    assert.ok(
      bits.every((c) => c === 'off'),
      'no page is writable after fork',
    );
    await w.page.getByRole('button', { name: /^child/ }).click();
    await w.page.waitForFunction(`document.querySelector('#pagetables h2').textContent.includes('child')`);
    assert.deepEqual(await table.locator('tbody tr td:nth-child(4)').allTextContents(), parentPfns);
    // Selecting a page selects its frame, mapped twice.
    await table.locator('tbody tr').first().click();
    const frame = w.page.getByTestId('frames-table').locator('tr.selected');
    assert.equal(await frame.locator('td').nth(3).textContent(), '2');
    await done(w);
  });

  it('dmirror-mirror: the device page table sits beside the CPU one, and notifiers show their seq', async () => {
    const w = await open('?example=dmirror-mirror&step=4');
    const devCells = w.page.getByTestId('dev-entry');
    assert.ok((await devCells.count()) > 0);
    assert.match((await devCells.allTextContents()).join(' '), /read|write/);
    assert.match((await w.page.locator('#notifiers').textContent()) ?? '', /seq \d+/);
    await done(w);
  });

  it('legacy hmm_mirror: struct hmm shows as a whole-mm notifier beside the interval ones, with its ops', async () => {
    const w = await open('?example=races/legacy-mirror&step=3');
    const whole = w.page.getByTestId('whole-mm');
    assert.match(
      (await whole.textContent()) ?? '',
      /whole mm hmm \(hmm_mirror API\) \(mirrors gpu0#0\) release, invalidate_range_start, invalidate_range_end/,
    );
    await done(w);
  });

  it('iommufd: each domain lists the IOVA runs it maps, linked to the frames and the pages', async () => {
    const steps = cliRun('examples/iommufd-map-copy-unmap.yaml');
    const copyAt = steps.findIndex((x) => x.op === 'IOMMU_IOAS_COPY') + 1;
    const w = await open(`?example=iommufd-map-copy-unmap&step=${copyAt}`);
    const domain = w.page.getByTestId('domain');
    assert.equal(await domain.count(), 1);
    assert.match((await domain.textContent()) ?? '', /hwpt \d+ domain \d+ paging auto mock devices \d+/);
    const run = domain.getByTestId('domain-runs').locator('tbody tr').first();
    const iova = ((await run.locator('td').first().textContent()) ?? '').split('-')[0];
    assert.match(iova, /^0x[0-9a-f]+$/);
    await run.click();
    // The run's first frame is selected in the frames view and its page in the page table.
    const pfn = ((await run.locator('td').nth(1).textContent()) ?? '').split('-')[0];
    assert.equal(
      await w.page.getByTestId('frames-table').locator('tr.selected td').first().textContent(),
      pfn,
    );
    const page = w.page.getByTestId('pt-table').locator('tbody tr.selected');
    assert.equal(await page.count(), 1);
    assert.equal(await page.locator('td').nth(3).textContent(), pfn);
    assert.ok((await w.page.locator('[data-testid="area"].selected').count()) >= 1);
    await done(w);
  });

  it('a big address space pages through windows of 4096 pages and frames', async () => {
    const text = [
      'version: 1',
      'name: big',
      'system: { ram: 64MiB, swap: 0 }',
      'processes: [p]',
      'steps:',
      '  - { op: mmap, proc: p, length: 40MiB, prot: [read, write], flags: [private, anonymous], save: buf }',
      '  - { op: cpu_write, proc: p, addr: buf, length: 20MiB, data: { pattern: index32 } }',
      '',
    ].join('\n');
    const w = await open(`?name=big.yaml&src=${Buffer.from(text).toString('base64url')}&step=2`);
    const rows = w.page.getByTestId('pt-table').locator('tbody tr');
    assert.equal(await rows.count(), 4096);
    const first = BigInt((await rows.first().getAttribute('data-addr')) ?? '0');
    const pages = w.page.getByLabel('page window', { exact: true });
    assert.equal(await pages.locator('option').count(), 3);
    await pages.selectOption('2');
    await w.page.waitForFunction(
      `document.querySelector('[data-testid="pt-table"] tbody tr').dataset.addr === '0x${(first + 8192n * 4096n).toString(16)}'`,
    );
    assert.equal(await rows.count(), 10240 - 8192);
    assert.equal(await rows.last().getAttribute('data-addr'), `0x${(first + 10239n * 4096n).toString(16)}`);
    const frames = w.page.getByTestId('frames-table').locator('tbody tr');
    assert.equal(await frames.count(), 4096);
    await w.page.getByRole('button', { name: 'Next frame window' }).click();
    await w.page.waitForFunction(
      `document.querySelector('[data-testid="frames-table"] tbody tr td').textContent === '4097'`,
    );
    // Stepping keeps the windows.
    await w.page.getByRole('button', { name: 'Step back' }).click();
    await atStep(w.page, 1);
    assert.equal(await pages.inputValue(), '2');
    await done(w);
  });

  it('runs to the next event of a kind, and the timeline shows invalidations with their event', async () => {
    const w = await open('?example=dmirror-mirror');
    await w.page.getByLabel('Next event kind').selectOption('notifier');
    await w.page.getByRole('button', { name: 'Run to next' }).click();
    await w.page.waitForFunction(`Number(document.querySelector('[data-testid="step-input"]').value) > 0`);
    await ready(w.page);
    await w.page.getByLabel('Event kind', { exact: true }).selectOption('notifier');
    const events = (await w.page.getByTestId('events').textContent()) ?? '';
    assert.match(events, /invalidate_range/);
    assert.match(events, /UNMAP|CLEAR|PROTECTION_VMA|MIGRATE|RELEASE|EXCLUSIVE/);
    await done(w);
  });

  it('the timeline names each fault by the handler it took, and marks the major ones', async () => {
    const w = await open('?example=swap-out-in&step=12');
    await w.page.getByLabel('Event kind', { exact: true }).selectOption('fault');
    const rows = await w.page.getByTestId('events').locator('li').allTextContents();
    assert.ok(
      rows.some((r) => /▶ do_anonymous_page cpu:/.test(r)),
      rows.join('\n'),
    );
    assert.ok(
      rows.some((r) => /▶ do_swap_page major cpu:/.test(r)),
      rows.join('\n'),
    );
    assert.ok(!rows.some((r) => r.includes('handle_mm_fault')), 'every fault has its kind');
    await done(w);
  });

  it('the URL holds the state: a copied link reopens the same example at the same step', async () => {
    const w = await open('?example=dmirror-migrate-round-trip');
    await w.page.locator('body').click({ position: { x: 1200, y: 10 } });
    for (let i = 0; i < 5; i++) await w.page.keyboard.press('ArrowRight');
    await atStep(w.page, 5);
    const shown = await shownReport(w.page);
    const url = w.page.url();
    assert.match(url, /example=dmirror-migrate-round-trip/);
    assert.match(url, /step=5/);
    const again = await open(url.slice(studio.url.length));
    await atStep(again.page, 5);
    assert.deepEqual(await shownReport(again.page), shown);
    await done(again);
    await done(w);
  });

  it('an edited scenario travels in the link as text', async () => {
    const w = await open('?example=fork-cow');
    const text = readFileSync(`${ROOT}examples/swap-out-in.yaml`, 'utf8').replace(
      'name: swap-out-in',
      'name: my-swap',
    );
    await setEditorText(w.page, text);
    await w.page.getByRole('button', { name: 'Run', exact: true }).click();
    await w.page.waitForFunction(`location.search.includes('src=')`);
    await ready(w.page);
    const steps = cliRun('examples/swap-out-in.yaml');
    assert.equal(await w.page.getByTestId('step-total').textContent(), `/ ${steps.length}`);
    await w.page.getByTestId('step-input').fill('3');
    await w.page.getByTestId('step-input').press('Enter');
    await atStep(w.page, 3);
    const again = await open(w.page.url().slice(studio.url.length));
    await atStep(again.page, 3);
    assert.equal(await again.page.getByLabel('Example').inputValue(), '');
    assert.deepEqual(await shownReport(again.page), await shownReport(w.page));
    await done(again);
    await done(w);
  });

  it('replays the CLI explorer token of a race: same oracle, diagram, and the violation at the end', async () => {
    const r = hetmem(['explore', 'examples/races/no-read-retry.yaml', '--json']);
    const cli = JSON.parse(r.stdout) as { replay: string; violation: { oracle: string } };
    const w = await open(`?example=races/no-read-retry&replay=${cli.replay}`);
    assert.equal(await w.page.getByTestId('race-token').textContent(), cli.replay);
    assert.match(
      (await w.page.getByTestId('violation').textContent()) ?? '',
      new RegExp(`^${cli.violation.oracle}`),
    );
    const diagram = w.page.getByTestId('diagram');
    assert.match((await diagram.locator('thead').textContent()) ?? '', /CPU0 gpu.*CPU1 cpu/);
    assert.match((await diagram.textContent()) ?? '', /violation after step/);
    await w.page.keyboard.press('End');
    const total = Number(((await w.page.getByTestId('step-total').textContent()) ?? '').replace('/ ', ''));
    await atStep(w.page, total);
    assert.equal(await diagram.locator('tr.current').count(), 1);
    await done(w);
  });

  it('replays a schedule on through the final steps, where the CLI finds the violation', async () => {
    const file = `${ROOT}test/fixtures/studio/final-race.yaml`;
    const text = readFileSync(file, 'utf8');
    const r = hetmem(['explore', file, '--json']);
    const cli = JSON.parse(r.stdout) as { replay: string; violation: { oracle: string; message: string } };
    assert.equal(cli.violation.oracle, 'expect');
    const src = Buffer.from(text).toString('base64url');
    const w = await open(`?name=final-race.yaml&src=${src}&replay=${encodeURIComponent(cli.replay)}`);
    assert.equal(
      await w.page.getByTestId('violation').textContent(),
      `${cli.violation.oracle}: ${cli.violation.message}`,
    );
    const total = Number(((await w.page.getByTestId('step-total').textContent()) ?? '').replace('/ ', ''));
    const diagram = w.page.getByTestId('diagram');
    assert.equal(await diagram.locator('td.end-unit').last().textContent(), 'final: expect_stats');
    assert.match(
      (await diagram.locator('.violation-row').textContent()) ?? '',
      new RegExp(`after step ${total} `),
    );
    await w.page.locator('body').click({ position: { x: 1200, y: 10 } });
    await w.page.keyboard.press('End');
    await atStep(w.page, total);
    assert.equal(await w.page.getByTestId('report-op').textContent(), 'expect_stats');
    assert.match((await w.page.locator('#step-report').textContent()) ?? '', /✘/);
    await done(w);
  });

  it('loads an explorer JSON result pasted into the token field', async () => {
    const r = hetmem(['explore', 'examples/races/no-read-retry.yaml', '--json']);
    const w = await open('?example=races/no-read-retry');
    await w.page.getByLabel('Replay token').fill(r.stdout);
    await w.page.getByRole('button', { name: 'Replay' }).click();
    await w.page.waitForFunction(`location.search.includes('replay=')`);
    await ready(w.page);
    assert.equal(
      await w.page.getByTestId('race-token').textContent(),
      (JSON.parse(r.stdout) as { replay: string }).replay,
    );
    await done(w);
  });

  it('explores in the browser and finds the race the CLI finds', async () => {
    const w = await open('?example=races/no-read-retry');
    await w.page.getByLabel('Schedules').fill('200');
    await w.page.getByRole('button', { name: 'Explore' }).click();
    await w.page.waitForFunction(`location.search.includes('replay=')`, undefined, { timeout: 120_000 });
    await ready(w.page);
    assert.match((await w.page.getByTestId('violation').textContent()) ?? '', /^frame-refs/);
    await done(w);
  });

  it('a bad replay token is reported, not thrown', async () => {
    const w = await open('?example=races/read-munmap');
    await w.page.getByLabel('Replay token').fill('v1.pct.s1.@@@');
    await w.page.getByRole('button', { name: 'Replay' }).click();
    await w.page.getByTestId('issue').waitFor();
    assert.match((await w.page.getByTestId('issue').textContent()) ?? '', /invalid replay token/);
    await done(w);
  });

  it('the editor shows the parser error at the line and column hetmem run gives', async () => {
    const bad = 'version: 1\nprocesses: [p]\nsteps:\n  - { op: mmapp, proc: p }\n';
    const file = tempFile('bad.yaml', bad);
    const cli = hetmem(['run', file]);
    assert.equal(cli.status, 2);
    const want = cli.stderr.trim().slice(file.length + 1);
    const w = await open('?example=fork-cow');
    await setEditorText(w.page, bad);
    await w.page.waitForFunction(
      `document.querySelector('[data-testid="lint"]').textContent.includes('mmapp')`,
    );
    assert.equal(await w.page.getByTestId('lint').textContent(), want);
    assert.ok((await w.page.locator('.cm-lintRange-error').count()) > 0, 'the error is marked in the text');
    // Running it reports the same line, and the previous state stays.
    await w.page.getByRole('button', { name: 'Run', exact: true }).click();
    await w.page.getByTestId('issue').waitFor();
    assert.equal(await w.page.getByTestId('issue').textContent(), `fork-cow.yaml:${want}`);
    await done(w);
  });

  it('the editor completes op names and the fields of the op from the schema', async () => {
    const w = await open('?example=fork-cow');
    await setEditorText(w.page, 'version: 1\nsteps:\n  - op: mpro');
    await w.page.keyboard.press('Control+Space');
    await w.page.locator('.cm-tooltip-autocomplete').waitFor();
    assert.match((await w.page.locator('.cm-tooltip-autocomplete').textContent()) ?? '', /mprotect/);
    await w.page.keyboard.press('Escape');
    await setEditorText(w.page, 'version: 1\nsteps:\n  - op: mprotect\n    pr');
    await w.page.keyboard.press('Control+Space');
    await w.page.locator('.cm-tooltip-autocomplete').waitFor();
    const options = (await w.page.locator('.cm-tooltip-autocomplete li').allTextContents()).join(' ');
    assert.match(options, /proc/);
    assert.match(options, /prot/);
    await done(w);
  });

  it('exercise mode: after fork, predict the frame counts and the CPU entry; the model checks', async () => {
    const w = await open('?example=fork-cow&mode=exercise&step=3');
    assert.equal(await w.page.getByRole('button', { name: 'Step forward' }).count(), 0, 'no peeking');
    assert.equal(await w.page.getByTestId('next-op').textContent(), 'fork');
    await w.page.getByTestId('questions').waitFor();
    const questions = w.page.getByTestId('question');
    const kinds: (string | null)[] = [];
    for (let i = 0; i < (await questions.count()); i++)
      kinds.push(await questions.nth(i).getAttribute('data-kind'));
    assert.deepEqual(kinds, ['value', 'choice', 'value', 'value']);
    await w.page.getByLabel('Return value').fill('2');
    await w.page.getByLabel(/^CPU entry at /).selectOption('present');
    await w.page.getByLabel(/^Mapcount of frame /).fill('2');
    await w.page.getByLabel(/^Refcount of frame /).fill('1');
    await w.page.getByRole('button', { name: 'Check', exact: true }).click();
    await w.page.getByTestId('checks').waitFor();
    assert.deepEqual(await classes(w.page.getByTestId('checks').locator('li')), ['ok', 'ok', 'ok', 'bad']);
    assert.match(
      (await w.page.getByTestId('checks').locator('li').nth(3).textContent()) ?? '',
      /you said 1, the model says 2/,
    );
    assert.equal(await w.page.getByTestId('score').textContent(), 'score 3 / 4');
    assert.equal(await shownStep(w.page), 3, 'the state stays hidden until asked');
    await w.page.getByRole('button', { name: 'Show the state' }).click();
    await atStep(w.page, 4);
    assert.equal(await w.page.getByTestId('next-op').textContent(), 'expect_stats');
    assert.match(w.page.url(), /mode=exercise/);
    await done(w);
  });

  it('exercise mode: which pages a device still maps after mprotect, then what the snapshot returns', async () => {
    const steps = cliRun('examples/dmirror-mirror.yaml');
    const at = steps.findIndex((x) => x.op === 'mprotect');
    const w = await open(`?example=dmirror-mirror&mode=exercise&step=${at}`);
    assert.equal(await w.page.getByTestId('next-op').textContent(), 'mprotect');
    await w.page.getByTestId('questions').waitFor();
    const group = w.page.getByRole('group', { name: /^Pages gpu0#0 maps/ });
    const boxes = group.getByRole('checkbox');
    assert.equal(await boxes.count(), 8);
    // The first five pages become read-only: the mirror's entries for them are invalidated.
    for (let i = 5; i < 8; i++) await boxes.nth(i).check();
    await w.page.getByLabel('Return value').fill('0');
    await w.page.getByLabel(/^gpu0#0 entry at /).selectOption('none');
    await w.page.getByLabel(/^CPU entry at /).selectOption('present');
    await w.page.getByLabel(/^Seq of gpu0#0/).fill('18');
    await w.page.getByRole('button', { name: 'Check', exact: true }).click();
    await w.page.getByTestId('checks').waitFor();
    const checks = w.page.getByTestId('checks').locator('li');
    assert.deepEqual(await classes(checks), ['ok', 'ok', 'ok', 'ok', 'bad']);
    assert.match((await checks.nth(4).textContent()) ?? '', /the model says 19/);
    await w.page.getByRole('button', { name: 'Show the state' }).click();
    await atStep(w.page, at + 1);
    assert.equal(await w.page.getByTestId('next-op').textContent(), 'HMM_DMIRROR_SNAPSHOT');
    await w.page.getByTestId('questions').waitFor();
    await w.page.getByLabel('Snapshot bytes').fill('READ*4, WRITE*4');
    await w.page.getByLabel('Return value').fill('0');
    await w.page
      .getByRole('group', { name: /^Pages gpu0#0 maps/ })
      .getByRole('checkbox')
      .nth(5)
      .check();
    await w.page
      .getByRole('group', { name: /^Pages gpu0#0 maps/ })
      .getByRole('checkbox')
      .nth(6)
      .check();
    await w.page
      .getByRole('group', { name: /^Pages gpu0#0 maps/ })
      .getByRole('checkbox')
      .nth(7)
      .check();
    await w.page.getByRole('button', { name: 'Check', exact: true }).click();
    await w.page.getByTestId('checks').waitFor();
    assert.deepEqual(await classes(w.page.getByTestId('checks').locator('li')), ['ok', 'ok', 'ok']);
    assert.equal(await w.page.getByTestId('score').textContent(), 'score 7 / 8');
    await done(w);
  });

  it('keyboard: Tab reaches the controls, arrows and Home/End travel in time', async () => {
    const w = await open('?example=fork-cow');
    await w.page.keyboard.press('Tab');
    const first = await w.page.evaluate('document.activeElement.getAttribute("aria-label")');
    assert.equal(first, 'Example');
    await w.page.locator('body').click({ position: { x: 1200, y: 10 } });
    await w.page.keyboard.press('End');
    const total = Number(((await w.page.getByTestId('step-total').textContent()) ?? '').replace('/ ', ''));
    await atStep(w.page, total);
    await w.page.keyboard.press('ArrowLeft');
    await w.page.keyboard.press('ArrowLeft');
    await atStep(w.page, total - 2);
    await w.page.keyboard.press('Home');
    await atStep(w.page, 0);
    // A page-table row is focusable and selects with Enter.
    await w.page.keyboard.press('End');
    await atStep(w.page, total);
    await w.page.getByTestId('step-input').fill('2');
    await w.page.getByTestId('step-input').press('Enter');
    await atStep(w.page, 2);
    await w.page.getByTestId('pt-table').locator('tbody tr').first().focus();
    await w.page.keyboard.press('Enter');
    assert.equal(await w.page.getByTestId('pt-table').locator('tbody tr.selected').count(), 1);
    await done(w);
  });

  it('fits 1280x800: no sideways scrolling, the main views on the first screen', async () => {
    const w = await open('?example=dmirror-two-devices&step=6');
    const overflow = await w.page.evaluate(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth',
    );
    assert.equal(overflow, 0);
    for (const id of ['#step-report', '#processes', '#pagetables', '#outline']) {
      const box = await w.page.locator(id).boundingBox();
      assert.ok(box !== null && box.y < 800 && box.x + 40 < 1280, `${id} is on screen`);
    }
    await w.page.screenshot({ path: `${ROOT}tmp/studio-1280x800.png` });
    await done(w);
  });

  it('exports the trace as JSON and as Perfetto protobuf', async () => {
    const w = await open('?example=dmirror-mirror&step=6');
    const trace = await exportedTrace(w.page);
    assert.ok(trace.traceEvents.length > 0);
    const [pf] = await Promise.all([
      w.page.waitForEvent('download'),
      w.page.getByRole('button', { name: 'Perfetto' }).click(),
    ]);
    assert.match(pf.suggestedFilename(), /\.pftrace$/);
    const bytes = readFileSync(await pf.path());
    assert.equal(bytes[0], (1 << 3) | 2, 'a Trace starts with its first packet (field 1, length-delimited)');
    await done(w);
  });

  it('exercise mode: the trace export stops at the step shown, not at the one run out of sight', async () => {
    const plain = await open('?example=fork-cow&step=6');
    const want = await exportedTrace(plain.page);
    await done(plain);
    const w = await open('?example=fork-cow&mode=exercise&step=6');
    assert.equal(await w.page.getByTestId('next-op').textContent(), 'cpu_write');
    await w.page.getByTestId('questions').waitFor();
    const got = await exportedTrace(w.page);
    assert.deepEqual(got, want);
    const cow = (t: ChromeTrace): boolean => t.traceEvents.some((e) => e.name === 'do_wp_page (copy)');
    assert.ok(!cow(got), "the hidden step's copy-on-write fault is not in it");
    await w.page.getByRole('button', { name: 'Check', exact: true }).click();
    await w.page.getByRole('button', { name: 'Show the state' }).click();
    await atStep(w.page, 7);
    assert.ok(cow(await exportedTrace(w.page)), 'once shown, the step is in the export');
    await done(w);
  });

  it('an unknown example in the link is reported', async () => {
    const w = await open('?example=nope', { wait: false });
    await w.page.getByTestId('issue').waitFor();
    assert.match((await w.page.getByTestId('issue').textContent()) ?? '', /no example named 'nope'/);
    await done(w);
  });
});

describe('hetmem studio without a FILE', { timeout: 600_000 }, () => {
  const studio = useStudio([]);

  it('serves no scenario, opens fork-cow and logs no console error', async () => {
    const res = await fetch(`${studio.url}scenario.json`);
    assert.equal(res.status, 204);
    assert.equal(await res.text(), '');
    const w = await studio.open();
    assert.equal(await w.page.getByLabel('Example', { exact: true }).inputValue(), 'fork-cow');
    assert.equal(
      await w.page.getByTestId('step-total').textContent(),
      `/ ${cliRun('examples/fork-cow.yaml').length}`,
    );
    await studio.done(w);
  });
});
