/**
 * Cost models: what the simulator charges for the events the driver model produced. They are
 * kept apart from the model's semantics (the same run gives the same faults and migrations under
 * every cost model) and from host wall time.
 *
 * `uvmsmart` follows UVMSmart (Ganguly et al., ISCA'19, GPGPU-Sim with a GTX 1080 Ti
 * configuration): 45 us per far fault, serialized, and each PCIe transfer of KB kibibytes at
 * speed(KB) = (2 * 12 / pi) * atan(0.07292 * KB) GB/s (a curve fitted to measured transfer
 * latency; 2^30 bytes per GB, as gmmu_t::get_ready_cycle() in UVMSmart's gpu-sim.cc divides):
 * about 2.17 GB/s for 4 KiB (1.76 us), 10.39 for 64 KiB, 11.95 for 2 MiB. Transfers are cut after
 * each faulted page and far faults counted as UVMSmart does (UvmStats.transfersToGpu, farFaults). A CPU fault on a GPU page is charged a far fault too (UVMSmart models no CPU
 * side; this is the model's assumption). `none` charges nothing: counts only.
 */
export interface CostModel {
  readonly name: 'uvmsmart' | 'none';
  /** Latency of one GPU far fault (ns). */
  readonly farFaultNs: number;
  /** Latency of one CPU fault on a GPU-resident page, transfer excluded (ns). */
  readonly cpuFaultNs: number;
  /** Time of one transfer of `bytes` over the interconnect (ns). */
  transferNs(bytes: number): number;
}

/** UVMSmart's fitted PCIe bandwidth for a transfer of `kb` KiB, in GB/s. */
export function uvmsmartPcieGBps(kb: number): number {
  return ((2 * 12) / Math.PI) * Math.atan(0.07292 * kb);
}

export const COST_MODELS: Readonly<Record<CostModel['name'], CostModel>> = {
  uvmsmart: {
    name: 'uvmsmart',
    farFaultNs: 45_000,
    cpuFaultNs: 45_000,
    // gmmu_t::get_ready_cycle(): bytes * core clock / speed / 2^30 cycles, a GB of 2^30 bytes.
    transferNs: (bytes) => (bytes <= 0 ? 0 : (bytes * 1e9) / (uvmsmartPcieGBps(bytes / 1024) * 2 ** 30)),
  },
  none: { name: 'none', farFaultNs: 0, cpuFaultNs: 0, transferNs: () => 0 },
};

/** Modelled time by component, in ns. */
export class TimeBreakdown {
  faultNs = 0;
  h2dNs = 0;
  d2hNs = 0;
  cpuFaultNs = 0;
  throttleNs = 0;
  computeNs = 0;

  get totalNs(): number {
    return this.faultNs + this.h2dNs + this.d2hNs + this.cpuFaultNs + this.throttleNs + this.computeNs;
  }
}
