/**
 * The command structs' sizes as include/uapi/linux/iommufd.h (Linux 6.18) defines them, written
 * down by hand from the header and kept apart from the model's own layout table, so that
 * `cmd_length` checks the model against the uAPI instead of against itself.
 *
 * `size` is sizeof(struct ...) and `minSize` is offsetofend(struct ..., last) for the `last`
 * field the kernel's TEST_LENGTH() names.
 */
export interface UapiStructSize {
  readonly struct: string;
  readonly last: string;
  readonly size: number;
  readonly minSize: number;
}

export const UAPI_STRUCT_SIZES: Readonly<Record<string, UapiStructSize>> = {
  IOMMU_DESTROY: { struct: 'iommu_destroy', last: 'id', size: 8, minSize: 8 },
  IOMMU_GET_HW_INFO: { struct: 'iommu_hw_info', last: '__reserved', size: 40, minSize: 32 },
  IOMMU_HWPT_ALLOC: { struct: 'iommu_hwpt_alloc', last: '__reserved', size: 48, minSize: 24 },
  IOMMU_HWPT_INVALIDATE: { struct: 'iommu_hwpt_invalidate', last: '__reserved', size: 32, minSize: 32 },
  IOMMU_IOAS_ALLOC: { struct: 'iommu_ioas_alloc', last: 'out_ioas_id', size: 12, minSize: 12 },
  IOMMU_IOAS_IOVA_RANGES: {
    struct: 'iommu_ioas_iova_ranges',
    last: 'out_iova_alignment',
    size: 32,
    minSize: 32,
  },
  IOMMU_IOAS_ALLOW_IOVAS: { struct: 'iommu_ioas_allow_iovas', last: 'allowed_iovas', size: 24, minSize: 24 },
  IOMMU_IOAS_MAP: { struct: 'iommu_ioas_map', last: 'iova', size: 40, minSize: 40 },
  IOMMU_IOAS_COPY: { struct: 'iommu_ioas_copy', last: 'src_iova', size: 40, minSize: 40 },
  IOMMU_IOAS_UNMAP: { struct: 'iommu_ioas_unmap', last: 'length', size: 24, minSize: 24 },
  IOMMU_OPTION: { struct: 'iommu_option', last: 'val64', size: 24, minSize: 24 },
  IOMMU_VFIO_IOAS: { struct: 'iommu_vfio_ioas', last: '__reserved', size: 12, minSize: 12 },
  IOMMU_IOAS_MAP_FILE: { struct: 'iommu_ioas_map_file', last: 'iova', size: 40, minSize: 40 },
  IOMMU_VIOMMU_ALLOC: { struct: 'iommu_viommu_alloc', last: 'out_viommu_id', size: 40, minSize: 24 },
  IOMMU_VDEVICE_ALLOC: { struct: 'iommu_vdevice_alloc', last: 'virt_id', size: 24, minSize: 24 },
  IOMMU_IOAS_CHANGE_PROCESS: {
    struct: 'iommu_ioas_change_process',
    last: '__reserved',
    size: 8,
    minSize: 8,
  },
};
