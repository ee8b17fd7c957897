/**
 * Models drivers/iommu/iommufd/main.c: the iommufd file (/dev/iommu), its object table, object
 * lifetime (users / shortterm_users), IOMMU_DESTROY, leaf-first destruction on close, and the
 * ioctl dispatcher with the uAPI size rules.
 *
 * Public entry points: iommufdOpen(sys, proc) -> fd, iommufdIoctl(sys, fd, name, arg[, proc]),
 * iommufdClose(sys, fd). `arg` is a plain object with the kernel's field names; u64 fields may
 * be numbers or bigints and are written back as bigints; `__tail` (bytes) stands for what a
 * caller put after its struct when `size` is larger: it starts at byte `__tailAt` of the
 * caller's buffer (by default the kernel's struct size).
 */
import { Inode, File, VM, type FileOps, type Vma, type VmOps } from '../mm/mm_types.ts';
import { remapPfn } from '../mm/memory.ts';
import { PAGE_SIZE } from '../../lib/units.ts';
import { RwSem, WaitQueue } from '../../sched/locks.ts';
import type { KGen } from '../../sched/types.ts';
import { Errno } from '../errno.ts';
import { dropRef, takeRef } from '../refs.ts';
import type { Process, System } from '../system.ts';
import { fieldSize, IOCTL_NR, s32, STRUCTS, u32, u64, type StructDesc } from './uapi.ts';
import { IOPT_PAGES_ACCOUNT_NONE } from './pages.ts';
import type { Ioas } from './ioas.ts';
import { sideTable } from '../../lib/snapshot.ts';

export type ObjType =
  | 'IOAS'
  | 'HWPT_PAGING'
  | 'HWPT_NESTED'
  | 'DEVICE'
  | 'ACCESS'
  | 'FAULT'
  | 'VIOMMU'
  | 'VDEVICE'
  | 'VEVENTQ'
  | 'HW_QUEUE'
  | 'SELFTEST';

/** Models struct iommufd_object. */
export class IommufdObject {
  id = 0;
  users = 1;
  shorttermUsers = 1;
  constructor(
    readonly type: ObjType,
    readonly ictx: IommufdCtx,
    /** The type's destroy op (iommufd_object_ops[type].destroy). */
    public destroy: () => KGen = function* () {},
  ) {}
}

/** Every iommufd object of a System not yet destroyed, for the leak oracle. */
const liveObjects = sideTable<System, Set<IommufdObject>>();

/** The iommufd objects of `sys` allocated and not yet destroyed (or aborted). */
export function iommufdObjects(sys: System): IommufdObject[] {
  return [...(liveObjects.get(sys) ?? [])];
}

function objectGone(sys: System, obj: IommufdObject): void {
  liveObjects.get(sys)?.delete(obj);
}

/** Every live iommufd context of a System, for the oracles. */
const contexts = sideTable<System, Set<IommufdCtx>>();

export function iommufdContexts(sys: System): IommufdCtx[] {
  return [...(contexts.get(sys) ?? [])];
}

/** Models struct iommufd_ctx. */
export class IommufdCtx {
  /** Models ictx->mt_mmap: the mmap()able regions by offset. */
  readonly mtMmap = new Map<number, IommufdMmap>();
  /** objects xarray (XA_FLAGS_ALLOC1): null marks a reserved, not yet finalized id. */
  readonly objects = new Map<number, IommufdObject | null>();
  private nextId = 1;
  readonly destroyWait: WaitQueue;
  readonly ioasCreationLock: RwSem;
  accountMode = IOPT_PAGES_ACCOUNT_NONE;
  vfioIoas: Ioas | null = null;
  file: File | null = null;
  /** The process whose ioctl is running (current). */
  current: Process;
  readonly id: number;

  constructor(
    readonly sys: System,
    readonly opener: Process,
  ) {
    this.id = sys.nextId('iommufd_ctx');
    this.current = opener;
    this.destroyWait = new WaitQueue(sys.sched, `iommufd[${this.id}].destroy_wait`);
    this.ioasCreationLock = new RwSem(
      sys.sched,
      `iommufd[${this.id}].ioas_creation_lock`,
      'ioas_creation_lock',
    );
  }

  /** Models _iommufd_object_alloc(): reserves an id; the object is invisible until finalized. */
  objectAlloc(obj: IommufdObject): number {
    if (this.sys.inject.shouldFail('iommufd_object_alloc')) return -Errno.ENOMEM;
    const id = this.nextId++;
    obj.id = id;
    this.objects.set(id, null);
    let live = liveObjects.get(this.sys);
    if (live === undefined) liveObjects.set(this.sys, (live = new Set()));
    live.add(obj);
    return 0;
  }

  /** Models iommufd_object_finalize(). */
  finalize(obj: IommufdObject): void {
    this.objects.set(obj.id, obj);
  }

  /** Models iommufd_object_abort(). */
  abort(obj: IommufdObject): void {
    this.objects.delete(obj.id);
    objectGone(this.sys, obj);
  }

  /** Models iommufd_get_object(): +1 users and shortterm_users, or -ENOENT. */
  getObject(id: number, type: ObjType | ObjType[] | 'ANY'): IommufdObject | number {
    if (this.sys.inject.shouldFail('iommufd_get_object')) return -Errno.ENOENT;
    const obj = this.objects.get(id);
    if (obj === undefined || obj === null) return -Errno.ENOENT;
    if (type !== 'ANY' && (Array.isArray(type) ? !type.includes(obj.type) : obj.type !== type))
      return -Errno.ENOENT;
    if (obj.users === 0) return -Errno.ENOENT;
    obj.users++;
    obj.shorttermUsers++;
    return obj;
  }

  /** Models iommufd_put_object(). */
  putObject(obj: IommufdObject): void {
    obj.users--;
    obj.shorttermUsers--;
    if (obj.shorttermUsers === 0) this.destroyWait.wakeUpAll();
  }

  /** Models iommufd_object_remove(): -ENOENT / -EBUSY, else unlink, wait for short-term users, destroy. */
  *objectRemove(id: number, toDestroy: IommufdObject | null = null): KGen<number> {
    const obj = toDestroy ?? this.objects.get(id);
    if (obj === undefined || obj === null || this.objects.get(obj.id) !== obj) return -Errno.ENOENT;
    if (obj.users !== 1) return -Errno.EBUSY;
    obj.users = 0;
    this.objects.delete(obj.id);
    if (this.vfioIoas !== null && this.vfioIoas.obj === obj) this.vfioIoas = null;
    obj.shorttermUsers--;
    yield* this.destroyWait.waitEvent(() => obj.shorttermUsers === 0);
    yield* obj.destroy();
    objectGone(this.sys, obj);
    return 0;
  }

  /**
   * Models iommufd_object_put_and_try_destroy() / the auto-domain put: drops the caller's user
   * reference and destroys the object if only the table still holds it.
   */
  *putAndTryDestroy(obj: IommufdObject): KGen {
    obj.users--;
    if (obj.users === 1 && this.objects.get(obj.id) === obj) yield* this.objectRemove(obj.id, obj);
  }

  /** Models iommufd_fops_release(): destroy every object, leaves first. */
  *release(): KGen {
    while (this.objects.size > 0) {
      let destroyed = 0;
      for (const [id, obj] of [...this.objects]) {
        if (obj === null || obj.users !== 1 || this.objects.get(id) !== obj) continue;
        obj.users = 0;
        this.objects.delete(id);
        destroyed++;
        yield* obj.destroy();
        objectGone(this.sys, obj);
      }
      if (destroyed === 0) {
        this.sys.sched.report({
          oracle: 'iommufd',
          message: `iommufd ctx ${this.id}: objects left on release`,
        });
        break;
      }
    }
    this.vfioIoas = null;
    contexts.get(this.sys)?.delete(this);
  }
}

/** Models struct iommufd_ucmd: the context, the normalized command, and the user's struct. */
export interface Ucmd {
  readonly ictx: IommufdCtx;
  readonly cmd: Record<string, number | bigint>;
  readonly user: Record<string, unknown>;
  readonly userSize: number;
  readonly desc: StructDesc;
}

/** Models iommufd_ucmd_respond(): copies min(user size, kernel size) bytes of the command back. */
export function respond(ucmd: Ucmd): number {
  for (const f of ucmd.desc.fields) {
    if (f.offset + fieldSize(f) > ucmd.userSize) continue;
    if (f.name === 'size') continue;
    // Pointers the model passes as JS objects (arrays, byte buffers) stay as they are.
    const cur = ucmd.user[f.name];
    if (cur !== null && typeof cur === 'object') continue;
    const v = ucmd.cmd[f.name];
    ucmd.user[f.name] = f.kind === 'u64' ? u64(v) : v;
  }
  return 0;
}

export type Handler = (ucmd: Ucmd) => KGen<number>;

const handlers = new Map<string, Handler>();
const rawHandlers = new Map<string, (ictx: IommufdCtx, arg: unknown) => KGen<number>>();

/** Registers the handler of an iommufd ioctl (the iommufd_ioctl_ops table). */
export function registerIoctl(name: string, h: Handler): void {
  handlers.set(name, h);
}

/** Registers a handler that takes the raw argument (VFIO compat ioctls, which have no size field). */
export function registerRawIoctl(name: string, h: (ictx: IommufdCtx, arg: unknown) => KGen<number>): void {
  rawHandlers.set(name, h);
}

/** Models iommufd_fops_ioctl(): size checks, copy_struct_from_user, dispatch. */
export function* iommufdDispatch(ictx: IommufdCtx, cmdName: string | number, arg: unknown): KGen<number> {
  let name = cmdName;
  if (typeof name === 'number') {
    const found = Object.entries(IOCTL_NR).find(([, nr]) => nr === name);
    if (found === undefined) return -Errno.ENOTTY;
    name = found[0];
  }
  const raw = rawHandlers.get(name);
  if (raw !== undefined) return yield* raw(ictx, arg);
  const desc = STRUCTS[name];
  const h = handlers.get(name);
  if (desc === undefined || h === undefined) return -Errno.ENOTTY;
  if (arg === null || typeof arg !== 'object') return -Errno.EFAULT;
  const user = arg as Record<string, unknown>;
  const userSize = u32(user.size);
  if (userSize < desc.minSize) return -Errno.EINVAL;
  if (userSize > desc.size) {
    // copy_struct_from_user(): every byte the kernel does not know must be zero.
    const tail = user.__tail as ArrayLike<number> | undefined;
    const at = typeof user.__tailAt === 'number' ? user.__tailAt : desc.size;
    if (tail !== undefined)
      for (let o = Math.max(desc.size, at); o < userSize && o - at < tail.length; o++)
        if (tail[o - at] !== 0) return -Errno.E2BIG;
  }
  const cmd: Record<string, number | bigint> = {};
  for (const f of desc.fields) {
    const inside = f.offset + fieldSize(f) <= userSize;
    const v = inside ? user[f.name] : 0;
    cmd[f.name] = f.kind === 'u64' ? u64(v) : f.kind === 's32' ? s32(v) : u32(v);
  }
  return yield* h({ ictx, cmd, user, userSize, desc });
}

/** Models struct iommufd_mmap: a physical range an object lets userspace mmap() from the iommufd. */
export interface IommufdMmap {
  readonly owner: IommufdObject;
  /** The mmap offset (vm_pgoff << PAGE_SHIFT) that selects it. */
  readonly offset: number;
  readonly physStart: number;
  readonly length: number;
}

/**
 * Models iommufd_fops_mmap(): only the exact offset and length of a region (ictx->mt_mmap) map,
 * as a PFN mapping of its physical pages; the VMA holds a user reference on the owner object.
 */
function* iommufdFopsMmap(file: File, vma: Vma): KGen<number> {
  yield* [];
  const ictx = file.priv as IommufdCtx;
  if ((vma.flags & VM.SHARED) === 0) return -Errno.EINVAL;
  if ((vma.flags & VM.EXEC) !== 0) return -Errno.EPERM;
  // mtree_load(): the region containing the offset; only its exact start and length map.
  const at = vma.pgoff * PAGE_SIZE;
  const immap = [...ictx.mtMmap.values()].find((m) => at >= m.offset && at < m.offset + m.length);
  if (immap === undefined) return -Errno.ENXIO;
  if (at !== immap.offset || vma.end - vma.start !== immap.length) return -Errno.ENXIO;
  vma.pgoff = 0;
  vma.priv = immap;
  vma.vmOps = iommufdVmaOps;
  for (let off = 0; off < immap.length; off += PAGE_SIZE)
    remapPfn(vma, vma.start + off, (immap.physStart + off) / PAGE_SIZE, (vma.flags & VM.WRITE) !== 0);
  immap.owner.users++;
  return 0;
}

/** Models iommufd_vma_ops: closing the VMA drops its reference on the owner. */
const iommufdVmaOps: VmOps = {
  name: 'iommufd_vma',
  close(vma: Vma) {
    (vma.priv as IommufdMmap).owner.users--;
  },
};

/** Models iommufd_viommu_alloc_mmap(): a region of `length` bytes at `physStart`; its offset. */
export function allocMmap(ictx: IommufdCtx, owner: IommufdObject, physStart: number, length: number): number {
  // mtree_alloc_range() from PAGE_SIZE up: the first free offset range.
  let offset = PAGE_SIZE;
  for (const m of [...ictx.mtMmap.values()].sort((a, b) => a.offset - b.offset)) {
    if (offset + length <= m.offset) break;
    offset = Math.max(offset, m.offset + m.length);
  }
  ictx.mtMmap.set(offset, { owner, offset, physStart, length });
  return offset;
}

/** Models iommufd_viommu_destroy_mmap(). */
export function destroyMmap(ictx: IommufdCtx, offset: number): void {
  ictx.mtMmap.delete(offset);
}

const fops: FileOps = {
  name: 'iommufd',
  mmap: iommufdFopsMmap,
  ioctl(file: File, cmd: string, arg: unknown): KGen<number> {
    return iommufdDispatch(file.priv as IommufdCtx, cmd, arg);
  },
  *release(file: File): KGen {
    yield* (file.priv as IommufdCtx).release();
  },
};

/** open() of /proc/self/fd/N of an iommufd file: /dev/iommu opened again, a new context. */
function* reopen(sys: System, proc: Process): KGen<number> {
  return iommufdOpen(sys, proc);
}

/** Models open("/dev/iommu"): returns an fd installed in the System's table. */
export function iommufdOpen(sys: System, proc: Process): number {
  const ictx = new IommufdCtx(sys, proc);
  const inode = new Inode(sys.nextId('mapping'), 'device', 'iommufd');
  inode.cdevOpen = (opener) => reopen(sys, opener);
  const file = new File(sys.nextId('file'), inode, 2, fops, ictx);
  ictx.file = file;
  let set = contexts.get(sys);
  if (set === undefined) {
    set = new Set();
    contexts.set(sys, set);
  }
  set.add(ictx);
  return sys.installFd(file);
}

/** The context behind an iommufd fd, or null. */
export function iommufdCtxOf(sys: System, fd: number): IommufdCtx | null {
  const f = sys.fileOf(fd);
  return f !== null && f.fops === fops ? (f.priv as IommufdCtx) : null;
}

/** Runs an ioctl on an iommufd fd: 0 (or a positive value for VFIO queries) or -errno. */
export function iommufdIoctl(
  sys: System,
  fd: number,
  name: string | number,
  arg: unknown,
  proc?: Process,
): number {
  const f = sys.fileOf(fd);
  if (f === null) return -Errno.EBADF;
  if (f.fops?.ioctl === undefined) return -Errno.ENOTTY;
  const ictx = f.fops === fops ? (f.priv as IommufdCtx) : null;
  if (ictx !== null) ictx.current = proc ?? ictx.opener;
  return sys.run(`ioctl:${String(name)}`, f.fops.ioctl(f, String(name), arg));
}

/** close(2) for files with fops: the last reference runs release. */
export function fileClose(sys: System, fd: number): number {
  const f = sys.fileOf(fd);
  if (f === null) return -Errno.EBADF;
  sys.files.delete(fd);
  fput(sys, f);
  return 0;
}

/** Models fput(): the last reference runs the file's release. */
export function fput(sys: System, f: File): void {
  if (--f.refs > 0) return;
  const ops = f.fops;
  if (ops?.release !== undefined) sys.run('fput', ops.release(f));
}

/** Models fput() from inside a kernel path. */
export function* fputGen(f: File): KGen {
  if (--f.refs > 0) return;
  const ops = f.fops;
  if (ops?.release !== undefined) yield* ops.release(f);
}

export const iommufdClose = fileClose;

/**
 * Models iommufd_ctx_get(): a reference on the context's file, so the context outlives the last
 * close of its fd until the matching iommufd_ctx_put(). `where` names the taker for the leak oracle.
 */
export function ctxGet(ictx: IommufdCtx, where: string): void {
  if (ictx.file === null) return;
  ictx.file.refs++;
  takeRef(ictx.sys, ictx.file, where);
}

/** Models iommufd_ctx_put(): the last reference releases the context as close does. */
export function* ctxPut(ictx: IommufdCtx): KGen {
  const file = ictx.file;
  if (file === null) return;
  dropRef(ictx.sys, file);
  yield* fputGen(file);
}
