/**
 * The event log in Perfetto's native trace format: a protobuf `Trace` of `TracePacket`s holding
 * `TrackDescriptor`s (one per System as a process track, one child track per hetmem track) and
 * `TrackEvent`s (slice begin / end and instants, with their args as debug annotations).
 * Perfetto reads JSON traces only through its legacy importer, which drops overlapping slices;
 * this form keeps every span. The few messages needed are encoded by hand; field numbers are
 * those of perfetto's protos/perfetto/trace/ (trace_packet.proto, track_event/*.proto).
 *
 * Timestamps are scheduler steps written as microseconds (1000 ns each), as the JSON form does.
 * Pure: no Node imports, so the studio exports the same bytes.
 */
import type { TraceSource } from './trace.ts';

/** Field numbers of the messages written. */
export const PF = {
  trace: { packet: 1 },
  packet: {
    timestamp: 8,
    trustedPacketSequenceId: 10,
    trackEvent: 11,
    sequenceFlags: 13,
    trackDescriptor: 60,
  },
  trackDescriptor: { uuid: 1, name: 2, process: 3, parentUuid: 5 },
  processDescriptor: { pid: 1, processName: 6 },
  trackEvent: { debugAnnotations: 4, type: 9, trackUuid: 11, categories: 22, name: 23 },
  debugAnnotation: { boolValue: 2, intValue: 4, doubleValue: 5, stringValue: 6, name: 10 },
} as const;

export const TYPE_SLICE_BEGIN = 1;
export const TYPE_SLICE_END = 2;
export const TYPE_INSTANT = 3;
/** SEQ_INCREMENTAL_STATE_CLEARED */
const SEQ_CLEARED = 1;
const SEQUENCE_ID = 1;

/** A protobuf message being written: fields appended in order. */
class Writer {
  private readonly bytes: number[] = [];

  private varint(v: bigint): void {
    let x = BigInt.asUintN(64, v);
    while (x >= 0x80n) {
      this.bytes.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.bytes.push(Number(x));
  }

  private key(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }

  uint(field: number, v: number | bigint): this {
    this.key(field, 0);
    this.varint(BigInt(v));
    return this;
  }

  bool(field: number, v: boolean): this {
    return this.uint(field, v ? 1 : 0);
  }

  double(field: number, v: number): this {
    this.key(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.bytes.push(...b);
    return this;
  }

  bytesField(field: number, b: Uint8Array): this {
    this.key(field, 2);
    this.varint(BigInt(b.length));
    for (const x of b) this.bytes.push(x);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytesField(field, new TextEncoder().encode(s));
  }

  message(field: number, m: Writer): this {
    return this.bytesField(field, m.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

function annotation(name: string, v: unknown): Writer {
  const a = new Writer().string(PF.debugAnnotation.name, name);
  const f = PF.debugAnnotation;
  if (typeof v === 'boolean') return a.bool(f.boolValue, v);
  if (typeof v === 'number' && Number.isSafeInteger(v)) return a.uint(f.intValue, BigInt(v));
  if (typeof v === 'number') return a.double(f.doubleValue, v);
  if (typeof v === 'bigint') return a.string(f.stringValue, `0x${v.toString(16)}`);
  if (typeof v === 'string') return a.string(f.stringValue, v);
  if (v instanceof Uint8Array) return a.string(f.stringValue, `<${v.length} bytes>`);
  if (v === null || v === undefined) return a.string(f.stringValue, String(v));
  const n = (v as { name?: unknown }).name;
  return a.string(f.stringValue, typeof n === 'string' ? n : (JSON.stringify(v) ?? typeof v));
}

function packet(ts: number): Writer {
  return new Writer()
    .uint(PF.packet.timestamp, BigInt(ts) * 1000n)
    .uint(PF.packet.trustedPacketSequenceId, SEQUENCE_ID);
}

/** Tracks sort CPU threads first, then devices, then notifiers, then anything else. */
function trackOrder(track: string): number {
  if (track.startsWith('cpu:')) return 0;
  if (track.startsWith('device:')) return 1;
  if (track.startsWith('notifier:')) return 2;
  return 3;
}

/** Encodes event logs (one per System) as a Perfetto protobuf trace. */
export function toPerfetto(sources: readonly TraceSource[]): Uint8Array {
  const trace = new Writer();
  const add = (p: Writer): void => {
    trace.message(PF.trace.packet, p);
  };
  let uuid = 0;
  sources.forEach((src, i) => {
    const procUuid = ++uuid;
    const first = packet(0)
      .uint(PF.packet.sequenceFlags, SEQ_CLEARED)
      .message(
        PF.packet.trackDescriptor,
        new Writer()
          .uint(PF.trackDescriptor.uuid, procUuid)
          .message(
            PF.trackDescriptor.process,
            new Writer()
              .uint(PF.processDescriptor.pid, i + 1)
              .string(PF.processDescriptor.processName, src.name),
          ),
      );
    add(first);
    const tracks = [...new Set(src.events.map((e) => e.track))].sort(
      (a, b) => trackOrder(a) - trackOrder(b) || a.localeCompare(b),
    );
    const uuids = new Map<string, number>();
    for (const t of tracks) {
      const u = ++uuid;
      uuids.set(t, u);
      add(
        packet(0).message(
          PF.packet.trackDescriptor,
          new Writer()
            .uint(PF.trackDescriptor.uuid, u)
            .string(PF.trackDescriptor.name, t)
            .uint(PF.trackDescriptor.parentUuid, procUuid),
        ),
      );
    }
    // As in the JSON form: an end without its begin is dropped, and spans still open at the end
    // are closed one step after the last event.
    const open = new Map<number, number>();
    let lastTs = 0;
    for (const e of src.events) {
      const u = uuids.get(e.track)!;
      lastTs = Math.max(lastTs, e.ts);
      if (e.ph === 'E') {
        const n = open.get(u) ?? 0;
        if (n === 0) continue;
        open.set(u, n - 1);
      }
      if (e.ph === 'B') open.set(u, (open.get(u) ?? 0) + 1);
      const te = new Writer()
        .uint(
          PF.trackEvent.type,
          e.ph === 'B' ? TYPE_SLICE_BEGIN : e.ph === 'E' ? TYPE_SLICE_END : TYPE_INSTANT,
        )
        .uint(PF.trackEvent.trackUuid, u);
      if (e.ph !== 'E') te.string(PF.trackEvent.categories, e.cat).string(PF.trackEvent.name, e.name);
      for (const [k, v] of Object.entries({ ...(e.args ?? {}), thread: e.thread })) {
        if (typeof v === 'function') continue;
        te.message(PF.trackEvent.debugAnnotations, annotation(k, v));
      }
      add(packet(e.ts).message(PF.packet.trackEvent, te));
    }
    for (const [u, n] of open) {
      for (let k = 0; k < n; k++) {
        add(
          packet(lastTs + 1).message(
            PF.packet.trackEvent,
            new Writer().uint(PF.trackEvent.type, TYPE_SLICE_END).uint(PF.trackEvent.trackUuid, u),
          ),
        );
      }
    }
  });
  return trace.finish();
}
