/**
 * Where the long-lived references of kernel objects (files, devices, iommufd objects) were
 * taken, for the leak oracle. The kernel keeps only counts; the model also remembers, for every
 * reference taken by a get that a put must match (fget, get_device, an iommufd object's users
 * beyond its table's), which code took it, so a reference never dropped is reported by where it
 * came from. Counts do not say which get a put matches: a put forgets the most recent site.
 * mm_struct references keep their own list (mm/mm_refs.ts).
 */
import { callSite, type Site } from './uaf.ts';
import type { System } from './system.ts';
import { sideTable } from '../lib/snapshot.ts';

/** Reference sites by object, in a side table so a snapshot restores them. */
const refSiteTable = sideTable<object, (string | Site)[]>();

/** The outstanding reference sites of every object that has some, by object. */
export class RefSites {
  /** One side table for every System's objects (each object belongs to one). */
  private readonly sites = refSiteTable;

  push(obj: object, site: string | Site): void {
    const list = this.sites.get(obj);
    if (list === undefined) this.sites.set(obj, [site]);
    else list.push(site);
  }

  pop(obj: object): void {
    this.sites.get(obj)?.pop();
  }

  /** Forgets the reference recorded as `site` (a put that knows which get it matches). */
  remove(obj: object, site: string | Site): void {
    const list = this.sites.get(obj);
    const i = list?.lastIndexOf(site) ?? -1;
    if (i >= 0) list?.splice(i, 1);
  }

  of(obj: object): readonly (string | Site)[] {
    return this.sites.get(obj) ?? [];
  }
}

/** Records a reference on `obj` taken now by `kernelFn`. */
export function takeRef(sys: System, obj: object, kernelFn: string): void {
  sys.refSites.push(obj, callSite(sys, kernelFn));
}

/** Forgets the most recent reference recorded on `obj` (its put). */
export function dropRef(sys: System, obj: object): void {
  sys.refSites.pop(obj);
}

/**
 * Records a reference on `obj` taken now by `kernelFn` whose holder keeps the returned site, so
 * that its put (dropRefAt) forgets that very reference: a VMA's reference on its file.
 */
export function takeRefAt(sys: System, obj: object, kernelFn: string): Site {
  const site = callSite(sys, kernelFn);
  sys.refSites.push(obj, site);
  return site;
}

/** Forgets the reference takeRefAt() recorded as `site`. */
export function dropRefAt(sys: System, obj: object, site: Site): void {
  sys.refSites.remove(obj, site);
}
