/** The views of a snapshot, linked by the selection (a process, a page, a frame). */
import type { ComponentChildren, JSX } from 'preact';
import type { DomainRunSnap, DomainSnap, PageSnap, Snapshot } from '../../src/scenario/snapshot.ts';
import { hex, kindClass } from './format.ts';
import { current, selectedProc, selection, setWindow, snapshot } from './state.ts';

/** Return values as the CLI prints them: addresses and other values of 2^32 and more in hex. */
function showRet(v: number): string {
  return Math.abs(v) >= 2 ** 32 ? hex(v) : String(v);
}

function Panel(props: { title: string; id: string; children: ComponentChildren }): JSX.Element {
  return (
    <section class="panel" id={props.id} aria-labelledby={`${props.id}-h`}>
      <h2 id={`${props.id}-h`}>{props.title}</h2>
      <div class="panel-body">{props.children}</div>
    </section>
  );
}

/** How the model reached this step: from a checkpoint (or where it was), running how many steps. */
function Travel(): JSX.Element | null {
  const t = current.value?.travel;
  if (t === undefined || t.replayed === 0) return null;
  return (
    <p class="dim" data-testid="travel" data-from={t.from} data-replayed={t.replayed}>
      {t.from === 0 ? 'from the start' : `from step ${t.from}`}, {t.replayed} step
      {t.replayed === 1 ? '' : 's'} run
    </p>
  );
}

export function StepReportView(): JSX.Element {
  const st = current.value;
  const r = st?.report ?? null;
  return (
    <Panel title="Step" id="step-report">
      {r === null ? (
        <p class="dim">{st?.race != null ? `scheduler step ${st.step} of ${st.total}` : 'nothing run yet'}</p>
      ) : (
        <div>
          <p>
            <b data-testid="report-op">{r.op}</b>{' '}
            <span class="dim">
              {r.section}
              {r.line > 0 ? ` line ${r.line}` : ''}
            </span>{' '}
            <span data-testid="report-ret" class={r.errno !== null ? 'bad' : ''}>
              {r.errno !== null ? `-${r.errno}` : `ret ${showRet(r.ret)}`}
            </span>{' '}
            <span class={r.ok ? 'ok' : 'bad'}>{r.ok ? '✔' : '✘'}</span>
          </p>
          {r.comment !== undefined ? <p class="dim">{r.comment}</p> : null}
          <Travel />
          {Object.keys(r.counters).length > 0 ? (
            <p class="counters" data-testid="report-counters">
              {Object.entries(r.counters).map(([k, v]) => (
                <span class="chip" key={k}>
                  {k} {v > 0 ? `+${v}` : v}
                </span>
              ))}
            </p>
          ) : null}
          {r.failures.map((f) => (
            <p class="bad" key={f}>
              {f}
            </p>
          ))}
        </div>
      )}
    </Panel>
  );
}

export function ProcessesView(): JSX.Element {
  const s = snapshot.value;
  const sel = selectedProc.value;
  return (
    <Panel title="Processes and VMAs" id="processes">
      {s === null || s.processes.length === 0 ? (
        <p class="dim">no processes</p>
      ) : (
        <ul class="plain">
          {s.processes.map((p) => (
            <li key={p.pid}>
              <button
                class={`proc ${sel?.pid === p.pid ? 'selected' : ''}`}
                aria-pressed={sel?.pid === p.pid}
                onClick={() => (selection.value = { ...selection.value, pid: p.pid, addr: null })}
              >
                {p.name}{' '}
                <span class="dim">
                  pid {p.pid}
                  {p.exited ? ' exited' : ''}
                </span>
              </button>
              <ul class="plain vmas">
                {p.vmas.map((v) => (
                  <li key={v.start} class="vma">
                    <code>
                      {hex(v.start)}-{hex(v.end)}
                    </code>{' '}
                    {v.prot} {v.kind}
                    {v.shared ? ' shared' : ''}
                    {v.huge ? ' hugetlb' : ''} <span class="dim">{(v.end - v.start) / 4096} pages</span>
                  </li>
                ))}
              </ul>
            </li>
          ))}
        </ul>
      )}
    </Panel>
  );
}

function Bits(props: { w: boolean; d: boolean; y: boolean; pmd: boolean }): JSX.Element {
  return (
    <span class="bits">
      <span class={props.w ? 'on' : 'off'} title="writable">
        W
      </span>
      <span class={props.d ? 'on' : 'off'} title="dirty">
        D
      </span>
      <span class={props.y ? 'on' : 'off'} title="young (accessed)">
        Y
      </span>
      {props.pmd ? (
        <span class="on" title="mapped by a PMD leaf">
          PMD
        </span>
      ) : null}
    </span>
  );
}

/** Pages through the windows of a big table: previous, a window by its start, next. */
function Pager(props: {
  label: string;
  starts: readonly number[];
  at: number;
  count: string;
  show: (start: number) => string;
  go: (i: number) => void;
}): JSX.Element {
  const { label, starts, at, go } = props;
  return (
    <div
      class="pager"
      role="group"
      aria-label={`${label}s`}
      data-testid={`pager-${label.replace(/ /g, '-')}`}
    >
      <button class="small" aria-label={`Previous ${label}`} disabled={at === 0} onClick={() => go(at - 1)}>
        ‹
      </button>{' '}
      <select
        aria-label={label}
        value={String(at)}
        onChange={(e) => go(Number((e.target as HTMLSelectElement).value))}
      >
        {starts.map((x, i) => (
          <option key={x} value={String(i)}>
            {i + 1} of {starts.length}: from {props.show(x)}
          </option>
        ))}
      </select>{' '}
      <button
        class="small"
        aria-label={`Next ${label}`}
        disabled={at + 1 >= starts.length}
        onClick={() => go(at + 1)}
      >
        ›
      </button>{' '}
      <span class="dim">{props.count}</span>
    </div>
  );
}

function deviceNames(s: Snapshot): string[] {
  const names = new Set<string>();
  for (const p of s.processes) for (const pg of p.pages) for (const d of pg.devices) names.add(d.mirror);
  return [...names].sort();
}

export function PageTablesView(): JSX.Element {
  const s = snapshot.value;
  const p = selectedProc.value;
  if (s === null || p === null)
    return (
      <Panel title="Page tables" id="pagetables">
        <p class="dim">no address space</p>
      </Panel>
    );
  const devs = deviceNames(s);
  const select = (pg: PageSnap): void => {
    selection.value = {
      pid: p.pid,
      addr: pg.addr,
      pfn: pg.cpu.pfn !== null && pg.cpu.kind !== 'swap' ? pg.cpu.pfn : (pg.devices[0]?.pfn ?? null),
    };
  };
  return (
    <Panel title={`Page tables: ${p.name}`} id="pagetables">
      {p.windows.length > 1 ? (
        <Pager
          label="page window"
          starts={p.windows}
          at={p.window}
          count={`${p.vmaPages} pages in VMAs`}
          show={hex}
          go={(i) => void setWindow({ addr: p.windows[i] })}
        />
      ) : null}
      {p.pages.length === 0 ? (
        <p class="dim">no mapped range</p>
      ) : (
        <table class="grid" data-testid="pt-table">
          <thead>
            <tr>
              <th>address</th>
              <th title="PGD / PUD / PMD / PTE index">pgd.pud.pmd.pte</th>
              <th>CPU entry</th>
              <th>pfn</th>
              <th>bits</th>
              {devs.map((d) => (
                <th key={d}>{d}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {p.pages.map((pg) => {
              const selected = selection.value.addr === pg.addr;
              return (
                <tr
                  key={pg.addr}
                  class={selected ? 'selected' : ''}
                  tabIndex={0}
                  aria-selected={selected}
                  onClick={() => select(pg)}
                  onKeyDown={(e) => {
                    if (e.key === 'Enter' || e.key === ' ') {
                      e.preventDefault();
                      select(pg);
                    }
                  }}
                  data-addr={hex(pg.addr)}
                >
                  <td>
                    <code>{hex(pg.addr)}</code>
                  </td>
                  <td class="dim">{pg.idx.join('.')}</td>
                  <td>
                    <span class={`kind ${kindClass(pg.cpu.kind)}`} data-testid="cpu-kind">
                      {pg.cpu.kind}
                    </span>
                    {pg.outside === true ? (
                      <span class="chip bad" title="no VMA covers it; only a device still maps it">
                        no VMA
                      </span>
                    ) : null}
                  </td>
                  <td>{pg.cpu.pfn ?? ''}</td>
                  <td>
                    {pg.cpu.kind === 'none' ? null : (
                      <Bits w={pg.cpu.writable} d={pg.cpu.dirty} y={pg.cpu.young} pmd={pg.cpu.pmd} />
                    )}
                  </td>
                  {devs.map((d) => {
                    const e = pg.devices.find((x) => x.mirror === d);
                    return (
                      <td key={d} data-testid="dev-entry">
                        {e === undefined ? (
                          <span class="dim">-</span>
                        ) : (
                          <span class={`kind ${e.deviceMemory ? 'k-deviceprivate' : 'k-present'}`}>
                            {e.access} {e.pfn}
                            {e.deviceMemory ? ' devmem' : ''}
                          </span>
                        )}
                      </td>
                    );
                  })}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </Panel>
  );
}

export function FramesView(): JSX.Element {
  const s = snapshot.value;
  const pfn = selection.value.pfn;
  return (
    <Panel title="Physical frames" id="frames">
      {s !== null && s.frameWindows.length > 1 ? (
        <Pager
          label="frame window"
          starts={s.frameWindows}
          at={s.frameWindow}
          count={`${s.frameTotal} frames in use`}
          show={(pfn) => `pfn ${pfn}`}
          go={(i) => void setWindow({ pfn: s.frameWindows[i] })}
        />
      ) : null}
      {s === null || s.frames.length === 0 ? (
        <p class="dim">no frame in use</p>
      ) : (
        <table class="grid" data-testid="frames-table">
          <thead>
            <tr>
              <th>pfn</th>
              <th>where</th>
              <th>ref</th>
              <th>map</th>
              <th>pins</th>
              <th>flags</th>
            </tr>
          </thead>
          <tbody>
            {s.frames.map((f) => (
              <tr
                key={f.pfn}
                class={pfn === f.pfn ? 'selected' : ''}
                tabIndex={0}
                onClick={() => (selection.value = { ...selection.value, pfn: f.pfn })}
                onKeyDown={(e) => {
                  if (e.key === 'Enter') selection.value = { ...selection.value, pfn: f.pfn };
                }}
              >
                <td>{f.pfn}</td>
                <td>{f.where === 'device' ? (f.device ?? 'device') : 'RAM'}</td>
                <td>{f.refcount}</td>
                <td>{f.mapcount}</td>
                <td>{f.pins}</td>
                <td class="dim">
                  {f.order > 0 ? `order ${f.order} ` : ''}
                  {f.flags.join(' ')}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Panel>
  );
}

export function NotifiersView(): JSX.Element {
  const s = snapshot.value;
  const addr = selection.value.addr;
  return (
    <Panel title="MMU notifiers" id="notifiers">
      {s === null || s.notifiers.length === 0 ? (
        <p class="dim">no notifier registered</p>
      ) : (
        <div>
          {s.notifiers.map((n) => (
            <div key={n.mm}>
              <p>
                mm {n.mm} ({n.owner}): invalidate_seq <b>{n.treeSeq}</b>
                {n.treeSeq % 2 === 1 ? <span class="bad"> invalidating</span> : null}{' '}
                <span class="dim">{n.activeRanges} active ranges</span>
              </p>
              <ul class="plain">
                {n.intervals.map((i) => (
                  <li
                    key={`${i.start}-${i.owner}`}
                    class={addr !== null && addr >= i.start && addr <= i.last ? 'selected' : ''}
                  >
                    <code>
                      {hex(i.start)}-{hex(i.last)}
                    </code>{' '}
                    {i.owner} seq {i.seq} <span class="dim">{i.ops.join(', ')}</span>
                  </li>
                ))}
              </ul>
              {n.whole.length > 0 ? (
                <ul class="plain" data-testid="whole-mm">
                  {n.whole.map((w, k) => (
                    <li key={k}>
                      <code>whole mm</code> {w.owner}
                      {w.mirrors.length > 0 ? ` (mirrors ${w.mirrors.join(', ')})` : ''}{' '}
                      <span class="dim">{w.ops.join(', ')}</span>
                    </li>
                  ))}
                </ul>
              ) : null}
            </div>
          ))}
        </div>
      )}
    </Panel>
  );
}

const PROT = (p: number): string => `${p & 1 ? 'r' : '-'}${p & 2 ? 'w' : '-'}`;

function inRun(
  r: DomainRunSnap,
  sel: { pid: number | null; addr: number | null; pfn: number | null },
): boolean {
  if (sel.pfn !== null && sel.pfn >= r.pfn && sel.pfn < r.pfn + r.npages) return true;
  return (
    r.user !== null &&
    sel.addr !== null &&
    (sel.pid === null || sel.pid === r.pid) &&
    sel.addr >= r.user &&
    sel.addr < r.user + r.npages * 4096
  );
}

/** One domain: its HWPT, devices, and the IOVA runs it maps, each linked to its frames and pages. */
function DomainView(props: { d: DomainSnap }): JSX.Element {
  const d = props.d;
  const sel = selection.value;
  const choose = (r: DomainRunSnap): void => {
    selection.value = { pid: r.pid ?? sel.pid, addr: r.user, pfn: r.pfn };
  };
  return (
    <li class="domain" data-testid="domain">
      <p>
        <b>{d.hwpt !== null ? `hwpt ${d.hwpt}` : 'hwpt'}</b>{' '}
        <span class="dim">
          domain {d.id} {d.kind}
          {d.auto ? ' auto' : ''}
          {d.owner === 'iommufd_selftest' ? ' mock' : ` ${d.owner}`}
          {d.parent !== null ? ` over hwpt ${d.parent}` : ''}
          {d.kind === 'paging' && !d.attached ? ' not attached' : ''}
        </span>{' '}
        {d.devices.length > 0 ? `devices ${d.devices.join(', ')}` : <span class="dim">no device</span>}
      </p>
      {d.kind === 'nested' ? (
        <p class="dim">translates through its parent's IOVA space</p>
      ) : d.runs.length === 0 ? (
        <p class="dim">maps nothing</p>
      ) : (
        <table class="grid" data-testid="domain-runs">
          <thead>
            <tr>
              <th>IOVA</th>
              <th>pfn</th>
              <th>pages</th>
              <th>user address</th>
              <th>dirty</th>
            </tr>
          </thead>
          <tbody>
            {d.runs.map((r) => {
              const on = inRun(r, sel);
              return (
                <tr
                  key={r.iova.toString()}
                  class={on ? 'selected' : ''}
                  tabIndex={0}
                  aria-selected={on}
                  onClick={() => choose(r)}
                  onKeyDown={(e) => {
                    if (e.key === 'Enter' || e.key === ' ') {
                      e.preventDefault();
                      choose(r);
                    }
                  }}
                >
                  <td>
                    <code>
                      {hex(r.iova)}-{hex(r.last)}
                    </code>
                  </td>
                  <td>
                    {r.pfn}
                    {r.npages > 1 ? `-${r.pfn + r.npages - 1}` : ''}
                  </td>
                  <td>{r.npages}</td>
                  <td>{r.user !== null ? <code>{hex(r.user)}</code> : <span class="dim">-</span>}</td>
                  <td>{r.dirty > 0 ? r.dirty : ''}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </li>
  );
}

export function IommufdView(): JSX.Element {
  const s = snapshot.value;
  const sel = selection.value;
  return (
    <Panel title="iommufd" id="iommufd">
      {s === null || s.ioas.length === 0 ? (
        <p class="dim">no IOAS</p>
      ) : (
        <div>
          {s.ioas.map((a) => (
            <div key={`${a.ctx}.${a.id}`} class="ioas" data-testid="ioas">
              <p>
                <b>IOAS {a.id}</b> <span class="dim">ctx {a.ctx}</span>, {a.domains.length} domain
                {a.domains.length === 1 ? '' : 's'}
              </p>
              <ul class="plain">
                {a.areas.map((ar) => {
                  const on =
                    ar.user !== null &&
                    sel.addr !== null &&
                    (sel.pid === null || sel.pid === ar.pid) &&
                    BigInt(sel.addr) >= BigInt(ar.user) &&
                    BigInt(sel.addr) - BigInt(ar.user) <= ar.last - ar.iova;
                  return (
                    <li key={ar.iova.toString()} class={on ? 'selected' : ''} data-testid="area">
                      area{' '}
                      <code>
                        {hex(ar.iova)}-{hex(ar.last)}
                      </code>{' '}
                      {PROT(ar.prot)} iopt_pages {ar.pages ?? '-'}
                      {ar.user !== null ? (
                        <span>
                          {' '}
                          from <code>{hex(ar.user)}</code> <span class="dim">pid {ar.pid}</span>
                        </span>
                      ) : null}
                      {ar.accesses > 0 ? ` accesses ${ar.accesses}` : ''}
                    </li>
                  );
                })}
                {a.pages.map((pg) => (
                  <li key={pg.id}>
                    iopt_pages {pg.id}: {pg.npages} {pg.type} pages, npinned {pg.npinned}
                  </li>
                ))}
              </ul>
              {a.domains.length > 0 ? (
                <ul class="plain domains">
                  {a.domains.map((d) => (
                    <DomainView key={d.id} d={d} />
                  ))}
                </ul>
              ) : null}
            </div>
          ))}
        </div>
      )}
    </Panel>
  );
}

export function ThreadsView(): JSX.Element {
  const s = snapshot.value;
  const threads =
    s === null
      ? []
      : s.threads
          .filter((t) => t.state !== 'done')
          .concat(s.threads.filter((t) => t.state === 'done').slice(-4));
  return (
    <Panel title="Threads" id="threads">
      {threads.length === 0 ? (
        <p class="dim">no thread waits: every step ran to completion</p>
      ) : (
        <ul class="plain">
          {threads.map((t) => (
            <li key={t.id}>
              {t.name} <span class={`state-${t.state}`}>{t.state}</span> <span class="dim">at {t.at}</span>
            </li>
          ))}
        </ul>
      )}
    </Panel>
  );
}

const CATS = ['fault', 'notifier', 'migrate', 'hmm', 'device', 'pin', 'reclaim', 'iommufd', 'syscall'];

export function TimelineView(props: { filter: string; setFilter(f: string): void }): JSX.Element {
  const s = snapshot.value;
  const events = (s?.events ?? [])
    .filter((e) => props.filter === '' || e.cat === props.filter)
    .slice(-200)
    .reverse();
  return (
    <Panel title="Timeline (newest first)" id="timeline">
      <div>
        <label>
          show{' '}
          <select
            value={props.filter}
            onChange={(e) => props.setFilter((e.target as HTMLSelectElement).value)}
            aria-label="Event kind"
          >
            <option value="">all events</option>
            {CATS.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </label>
        <ol class="plain events" data-testid="events">
          {events.map((e, i) => (
            <li key={i} class={`ev cat-${e.cat}`}>
              <span class="dim">{e.ts}</span> <span class="chip">{e.cat}</span>{' '}
              {e.ph === 'B' ? '▶ ' : e.ph === 'E' ? '◀ ' : ''}
              {e.name}
              {typeof e.args.event === 'string' ? <b> {e.args.event}</b> : null}
              {e.args.major === true ? <b> major</b> : null} <span class="dim">{e.track}</span>
            </li>
          ))}
        </ol>
      </div>
    </Panel>
  );
}

export { CATS };
