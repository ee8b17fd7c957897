// Writes the binary NVIDIA UVM tools event samples examples/sim/traces/nvuvm-v1.bin and
// nvuvm-v2.bin: consecutive UvmEventEntry_V1 (64 bytes) / UvmEventEntry_V2 (72 bytes) records,
// little-endian, laid out as uvm_types.h of NVIDIA's open driver (kernel-open/nvidia-uvm/)
// declares them. The events are made up, not recorded on a GPU: four GPU faults (read, write,
// atomic, prefetch), a migration and a fault replay (both skipped by the importer) and a CPU
// fault. Run: node scripts/gen-nvuvm-sample.mjs
import { writeFileSync } from 'node:fs';

const GPU_FAULT = 3;
const CPU_FAULT = 1;
const MIGRATION = 2;
const REPLAY = 4;
const BASE = 0x7f2a40000000n;

/** [eventType, accessType, address offset, batchId] */
const EVENTS = [
  [GPU_FAULT, 1, 0x0n, 1],
  [GPU_FAULT, 2, 0x10000n, 1],
  [MIGRATION, 0, 0x0n, 1],
  [REPLAY, 0, 0n, 1],
  [GPU_FAULT, 3, 0x200000n, 2],
  [GPU_FAULT, 4, 0x3000n, 2],
  [REPLAY, 0, 0n, 2],
  [CPU_FAULT, 2, 0x1000n, 0],
];

function entry(version, [type, access, off, batch], i) {
  const size = version === 1 ? 64 : 72;
  const b = Buffer.alloc(size);
  b.writeUInt8(type, 0);
  const ts = 1_000_000n + BigInt(i) * 1000n;
  if (type === GPU_FAULT) {
    // UvmEventGpuFaultInfo_V1: eventType, faultType, accessType, gpuIndex (u8 each), gpcId,
    // clientId (u16), address, timeStamp, timeStampGpu (u64), batchId (u32), clientType (u8).
    // _V2: eventType, faultType (u8), gpuIndex (u16), gpcId, clientId (u16), the same u64s and
    // batchId, clientType (u8), accessType (u8).
    b.writeUInt8(2, 1); // faultType: UvmFaultTypeInvalidPte
    if (version === 1) b.writeUInt8(access, 2);
    else b.writeUInt8(access, 37);
    b.writeBigUInt64LE(BASE + off, 8);
    b.writeBigUInt64LE(ts, 16);
    b.writeBigUInt64LE(ts * 3n, 24);
    b.writeUInt32LE(batch, 32);
    b.writeUInt8(1, 36); // clientType: UvmEventFaultClientTypeGpc
  } else if (type === CPU_FAULT) {
    // UvmEventCpuFaultInfo: eventType, accessType (u8), padding, address, timeStamp (u64), pid,
    // threadId (u32), pc (u64).
    b.writeUInt8(access, 1);
    b.writeBigUInt64LE(BASE + off, 8);
    b.writeBigUInt64LE(ts, 16);
    b.writeUInt32LE(4242, 24);
    b.writeUInt32LE(4242, 28);
    b.writeBigUInt64LE(0x401000n, 32);
  } else if (type === MIGRATION) {
    // UvmEventMigrationInfo: address at 8 (V1) or 16 (V2), then migratedBytes.
    const at = version === 1 ? 8 : 16;
    b.writeBigUInt64LE(BASE + off, at);
    b.writeBigUInt64LE(65536n, at + 8);
  } else {
    // UvmEventGpuFaultReplayInfo: batchId at 4, timeStamp at 8.
    b.writeUInt32LE(batch, 4);
    b.writeBigUInt64LE(ts, 8);
  }
  return b;
}

for (const version of [1, 2]) {
  const out = new URL(`../examples/sim/traces/nvuvm-v${version}.bin`, import.meta.url);
  writeFileSync(out, Buffer.concat(EVENTS.map((e, i) => entry(version, e, i))));
}
