/**
 * The uAPI of include/uapi/linux/iommufd.h (and the VFIO type1 subset iommufd serves), as the
 * model sees it: ioctl names, flag values, and each command struct's byte layout so the
 * size rules of the dispatcher (short -> EINVAL, non-zero tail -> E2BIG, copy-back of
 * min(user size, kernel size)) are exact.
 */

export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;

export const IOMMU_OPTION_RLIMIT_MODE = 0;
export const IOMMU_OPTION_HUGE_PAGES = 1;
export const IOMMU_OPTION_OP_SET = 0;
export const IOMMU_OPTION_OP_GET = 1;

export const IOMMU_VFIO_IOAS_GET = 0;
export const IOMMU_VFIO_IOAS_SET = 1;
export const IOMMU_VFIO_IOAS_CLEAR = 2;

export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;
export const IOMMU_HWPT_ALLOC_PASID = 1 << 3;
export const IOMMU_HWPT_DATA_NONE = 0;
export const IOMMU_HWPT_DATA_SELFTEST = 0xdead;

export const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;
export const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;
export const IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0;
export const IOMMU_HW_INFO_TYPE_SELFTEST = 0xfeedbeef;
/** IOMMU_HW_INFO_FLAG_INPUT_TYPE (6.17): `in_data_type` asks for the info of that type. */
export const IOMMU_HW_INFO_FLAG_INPUT_TYPE = 1;

/** IOMMU_READ / IOMMU_WRITE / IOMMU_CACHE of include/linux/iommu.h. */
export const IOMMU_READ = 1 << 0;
export const IOMMU_WRITE = 1 << 1;
export const IOMMU_CACHE = 1 << 2;

/** VFIO type1 compatibility (include/uapi/linux/vfio.h). */
export const VFIO_API_VERSION = 0;
export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_TYPE1v2_IOMMU = 3;
export const VFIO_UNMAP_ALL = 9;
export const VFIO_DMA_CC_IOMMU = 4;
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;
export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;

export const U64_MAX = (1n << 64n) - 1n;
/** ULONG_MAX on a 64-bit kernel, exact. */
export const ULONG_MAX_BIG = U64_MAX;

type FieldKind = 'u8' | 'u16' | 'u32' | 's32' | 'u64';

/** One field of a command struct: name, byte offset, kind. */
export interface FieldDesc {
  readonly name: string;
  readonly offset: number;
  readonly kind: FieldKind;
}

const sizes: Record<FieldKind, number> = { u8: 1, u16: 2, u32: 4, s32: 4, u64: 8 };

/** A command struct: its fields, its full size, and the `min_size` the dispatcher requires. */
export interface StructDesc {
  readonly name: string;
  readonly fields: readonly FieldDesc[];
  readonly size: number;
  readonly minSize: number;
}

/**
 * Lays fields out with natural alignment like the C compiler does for these structs: sizeof() is
 * the end of the last member rounded up to the largest member alignment, so a struct of u32s
 * only (iommu_ioas_alloc) is 12 bytes, not 16. A nested union is taken as 8-byte aligned.
 */
function layout(name: string, spec: [string, FieldKind][], last: string, nestedUnionSize = 0): StructDesc {
  const fields: FieldDesc[] = [];
  let off = 0;
  let minSize = -1;
  let align = nestedUnionSize > 0 ? 8 : 1;
  for (const [fname, kind] of spec) {
    const sz = sizes[kind];
    off = Math.ceil(off / sz) * sz;
    fields.push({ name: fname, offset: off, kind });
    off += sz;
    align = Math.max(align, sz);
    if (fname === last) minSize = off;
  }
  off = Math.ceil(off / align) * align + nestedUnionSize;
  if (minSize < 0) throw new Error(`${name}: no field ${last}`);
  return { name, fields, size: Math.ceil(off / align) * align, minSize };
}

/** Struct layouts by ioctl name. */
export const STRUCTS: Record<string, StructDesc> = {
  IOMMU_DESTROY: layout(
    'iommu_destroy',
    [
      ['size', 'u32'],
      ['id', 'u32'],
    ],
    'id',
  ),
  IOMMU_IOAS_ALLOC: layout(
    'iommu_ioas_alloc',
    [
      ['size', 'u32'],
      ['flags', 'u32'],
      ['out_ioas_id', 'u32'],
    ],
    'out_ioas_id',
  ),
  IOMMU_IOAS_ALLOW_IOVAS: layout(
    'iommu_ioas_allow_iovas',
    [
      ['size', 'u32'],
      ['ioas_id', 'u32'],
      ['num_iovas', 'u32'],
      ['__reserved', 'u32'],
      ['allowed_iovas', 'u64'],
    ],
    'allowed_iovas',
  ),
  IOMMU_IOAS_COPY: layout(
    'iommu_ioas_copy',
    [
      ['size', 'u32'],
      ['flags', 'u32'],
      ['dst_ioas_id', 'u32'],
      ['src_ioas_id', 'u32'],
      ['length', 'u64'],
      ['dst_iova', 'u64'],
      ['src_iova', 'u64'],
    ],
    'src_iova',
  ),
  IOMMU_IOAS_IOVA_RANGES: layout(
    'iommu_ioas_iova_ranges',
    [
      ['size', 'u32'],
      ['ioas_id', 'u32'],
      ['num_iovas', 'u32'],
      ['__reserved', 'u32'],
      ['allowed_iovas', 'u64'],
      ['out_iova_alignment', 'u64'],
    ],
    'out_iova_alignment',
  ),
  IOMMU_IOAS_MAP: layout(
    'iommu_ioas_map',
    [
      ['size', 'u32'],
      ['flags', 'u32'],
      ['ioas_id', 'u32'],
      ['__reserved', 'u32'],
      ['user_va', 'u64'],
      ['length', 'u64'],
      ['iova', 'u64'],
    ],
    'iova',
  ),
  IOMMU_IOAS_UNMAP: layout(
    'iommu_ioas_unmap',
    [
      ['size', 'u32'],
      ['ioas_id', 'u32'],
      ['iova', 'u64'],
      ['length', 'u64'],
    ],
    'length',
  ),
  IOMMU_OPTION: layout(
    'iommu_option',
    [
      ['size', 'u32'],
      ['option_id', 'u32'],
      ['op', 'u16'],
      ['__reserved', 'u16'],
      ['object_id', 'u32'],
      ['val64', 'u64'],
    ],
    'val64',
  ),
  IOMMU_VFIO_IOAS: layout(
    'iommu_vfio_ioas',
    [
      ['size', 'u32'],
      ['ioas_id', 'u32'],
      ['op', 'u16'],
      ['__reserved', 'u16'],
    ],
    '__reserved',
  ),
  IOMMU_HWPT_ALLOC: layout(
    'iommu_hwpt_alloc',
    [
      ['size', 'u32'],
      ['flags', 'u32'],
      ['dev_id', 'u32'],
      ['pt_id', 'u32'],
      ['out_hwpt_id', 'u32'],
      ['__reserved', 'u32'],
      ['data_type', 'u32'],
      ['data_len', 'u32'],
      ['data_uptr', 'u64'],
      ['fault_id', 'u32'],
      ['__reserved2', 'u32'],
    ],
    '__reserved',
  ),
  IOMMU_GET_HW_INFO: layout(
    'iommu_hw_info',
    [
      ['size', 'u32'],
      ['flags', 'u32'],
      ['dev_id', 'u32'],
      ['data_len', 'u32'],
      ['data_uptr', 'u64'],
      ['out_data_type', 'u32'],
      ['out_max_pasid_log2', 'u8'],
      ['__reserved', 'u8'],
      ['__reserved1', 'u8'],
      ['__reserved2', 'u8'],
      ['out_capabilities', 'u64'],
    ],
    '__reserved2',
  ),
  IOMMU_HWPT_SET_DIRTY_TRACKING: layout(
    'iommu_hwpt_set_dirty_tracking',
    [
      ['size', 'u32'],
      ['flags', 'u32'],
      ['hwpt_id', 'u32'],
      ['__reserved', 'u32'],
    ],
    '__reserved',
  ),
  IOMMU_HWPT_GET_DIRTY_BITMAP: layout(
    'iommu_hwpt_get_dirty_bitmap',
    [
      ['size', 'u32'],
      ['hwpt_id', 'u32'],
      ['flags', 'u32'],
      ['__reserved', 'u32'],
      ['iova', 'u64'],
      ['length', 'u64'],
      ['page_size', 'u64'],
      ['data', 'u64'],
    ],
    'data',
  ),
  IOMMU_HWPT_INVALIDATE: layout(
    'iommu_hwpt_invalidate',
    [
      ['size', 'u32'],
      ['hwpt_id', 'u32'],
      ['data_uptr', 'u64'],
      ['data_type', 'u32'],
      ['entry_len', 'u32'],
      ['entry_num', 'u32'],
      ['__reserved', 'u32'],
    ],
    '__reserved',
  ),
  IOMMU_FAULT_QUEUE_ALLOC: layout(
    'iommu_fault_alloc',
    [
      ['size', 'u32'],
      ['flags', 'u32'],
      ['out_fault_id', 'u32'],
      ['out_fault_fd', 'u32'],
    ],
    'out_fault_fd',
  ),
  IOMMU_IOAS_MAP_FILE: layout(
    'iommu_ioas_map_file',
    [
      ['size', 'u32'],
      ['flags', 'u32'],
      ['ioas_id', 'u32'],
      ['fd', 's32'],
      ['start', 'u64'],
      ['length', 'u64'],
      ['iova', 'u64'],
    ],
    'iova',
  ),
  IOMMU_VIOMMU_ALLOC: layout(
    'iommu_viommu_alloc',
    [
      ['size', 'u32'],
      ['flags', 'u32'],
      ['type', 'u32'],
      ['dev_id', 'u32'],
      ['hwpt_id', 'u32'],
      ['out_viommu_id', 'u32'],
      ['data_len', 'u32'],
      ['__reserved', 'u32'],
      ['data_uptr', 'u64'],
    ],
    'out_viommu_id',
  ),
  IOMMU_VDEVICE_ALLOC: layout(
    'iommu_vdevice_alloc',
    [
      ['size', 'u32'],
      ['viommu_id', 'u32'],
      ['dev_id', 'u32'],
      ['out_vdevice_id', 'u32'],
      ['virt_id', 'u64'],
    ],
    'virt_id',
  ),
  IOMMU_VEVENTQ_ALLOC: layout(
    'iommu_veventq_alloc',
    [
      ['size', 'u32'],
      ['flags', 'u32'],
      ['viommu_id', 'u32'],
      ['type', 'u32'],
      ['veventq_depth', 'u32'],
      ['out_veventq_id', 'u32'],
      ['out_veventq_fd', 'u32'],
      ['__reserved', 'u32'],
    ],
    '__reserved',
  ),
  IOMMU_HW_QUEUE_ALLOC: layout(
    'iommu_hw_queue_alloc',
    [
      ['size', 'u32'],
      ['flags', 'u32'],
      ['viommu_id', 'u32'],
      ['type', 'u32'],
      ['index', 'u32'],
      ['out_hw_queue_id', 'u32'],
      ['nesting_parent_iova', 'u64'],
      ['length', 'u64'],
    ],
    'length',
  ),
  IOMMU_IOAS_CHANGE_PROCESS: layout(
    'iommu_ioas_change_process',
    [
      ['size', 'u32'],
      ['__reserved', 'u32'],
    ],
    '__reserved',
  ),
  IOMMU_TEST_CMD: layout(
    'iommu_test_cmd',
    [
      ['size', 'u32'],
      ['op', 'u32'],
      ['id', 'u32'],
      ['__reserved', 'u32'],
    ],
    '__reserved',
    48 + 8,
  ),
};

/** The ioctl numbers, in dispatch-table order (IOMMUFD_CMD_BASE = 0x80). */
export const IOCTL_NR: Record<string, number> = {
  IOMMU_DESTROY: 0x80,
  IOMMU_IOAS_ALLOC: 0x81,
  IOMMU_IOAS_ALLOW_IOVAS: 0x82,
  IOMMU_IOAS_COPY: 0x83,
  IOMMU_IOAS_IOVA_RANGES: 0x84,
  IOMMU_IOAS_MAP: 0x85,
  IOMMU_IOAS_UNMAP: 0x86,
  IOMMU_OPTION: 0x87,
  IOMMU_VFIO_IOAS: 0x88,
  IOMMU_HWPT_ALLOC: 0x89,
  IOMMU_GET_HW_INFO: 0x8a,
  IOMMU_HWPT_SET_DIRTY_TRACKING: 0x8b,
  IOMMU_HWPT_GET_DIRTY_BITMAP: 0x8c,
  IOMMU_HWPT_INVALIDATE: 0x8d,
  IOMMU_FAULT_QUEUE_ALLOC: 0x8e,
  IOMMU_IOAS_MAP_FILE: 0x8f,
  IOMMU_VIOMMU_ALLOC: 0x90,
  IOMMU_VDEVICE_ALLOC: 0x91,
  IOMMU_IOAS_CHANGE_PROCESS: 0x92,
  IOMMU_VEVENTQ_ALLOC: 0x93,
  IOMMU_HW_QUEUE_ALLOC: 0x94,
  IOMMU_TEST_CMD: 0xa0,
};

/** Converts a u64 uAPI value given as number or bigint to bigint; undefined reads as 0. */
export function u64(v: unknown): bigint {
  if (typeof v === 'bigint') return BigInt.asUintN(64, v);
  if (typeof v === 'number' && Number.isFinite(v)) return BigInt.asUintN(64, BigInt(Math.trunc(v)));
  return 0n;
}

/** Converts a u32 (or smaller) uAPI value to a number; undefined reads as 0. */
export function u32(v: unknown): number {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.trunc(v) >>> 0;
  if (typeof v === 'bigint') return Number(BigInt.asUintN(32, v));
  return 0;
}

export function s32(v: unknown): number {
  return u32(v) | 0;
}

/** Field size in bytes. */
export function fieldSize(f: FieldDesc): number {
  return sizes[f.kind];
}
