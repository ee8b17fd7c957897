/**
 * The iommufd model: importing this module registers every ioctl handler. The selftest
 * driver (src/kernel/drivers/iommufd_selftest.ts) adds IOMMU_TEST_CMD.
 */
export { iommufdOpen, iommufdIoctl, iommufdClose, iommufdCtxOf, iommufdContexts, fileClose } from './main.ts';
export type { IommufdCtx } from './main.ts';
import './ioas.ts';
import './device.ts';
import './hw_pagetable.ts';
import './vfio_compat.ts';
import './fault.ts';
import './viommu.ts';
import './veventq.ts';
export {
  iommufdVeventqRead,
  veventqFdRead,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  VEVENT_HEADER_SIZE,
} from './veventq.ts';
export {
  iommufdFaultRead,
  iommufdFaultWrite,
  faultFdRead,
  faultFdWrite,
  PGFAULT_SIZE,
  PAGE_RESPONSE_SIZE,
  IOMMUFD_PAGE_RESP_SUCCESS,
  IOMMUFD_PAGE_RESP_INVALID,
} from './fault.ts';
export * from './uapi.ts';
export {
  setCapIpcLock,
  hasCapIpcLock,
  IOPT_PAGES_ACCOUNT_NONE,
  IOPT_PAGES_ACCOUNT_USER,
  IOPT_PAGES_ACCOUNT_MM,
} from './pages.ts';
