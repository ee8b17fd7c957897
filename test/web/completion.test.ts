import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OPS, scenarioJsonSchema } from '../../src/scenario/schema.ts';
import { indexSchema } from '../../web/src/completion.ts';

describe('studio editor completion', () => {
  it('indexes every op of the scenario JSON Schema with its fields and values', () => {
    const idx = indexSchema(scenarioJsonSchema() as Record<string, unknown>);
    assert.ok(idx.top.some((t) => t.label === 'steps'));
    for (const op of ['mmap', 'munmap', 'HMM_DMIRROR_READ', 'IOMMU_IOAS_MAP']) assert.ok(idx.ops.has(op), op);
    assert.equal(idx.ops.size, Object.keys(OPS).length);
    const mmap = idx.ops.get('mmap')!;
    assert.ok(mmap.fields.includes('proc') && mmap.required.includes('length'));
    assert.ok(mmap.values.get('prot')?.includes('write'));
    assert.ok(mmap.values.get('flags')?.includes('anonymous'));
  });
});
