import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { local } from '../executors/local.js';
import { readPivFile } from '../io/pivfile.js';
import { pivSchema } from '../params/piv.js';
import { defaults, setAt } from '../params/schema.js';
import { planPiv } from '../topologies/piv.js';
import { makeField } from '../works/synth/fields.js';
import { renderPair } from '../works/synth/particles.js';

describe('PIV topology', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'fi-topo-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('treats two-page TIFFs as double frames (page 0 -> page 1), one result per file', async () => {
    const n = 128;
    for (const k of [1, 2]) {
      const p = renderPair(makeField({ kind: 'uniform', dx: 2.5, dy: 1 }, [n, n]),
        { shape: [n, n], density: 0.035, diameter: 2.5, bitDepth: 16, noise: 0.01, seed: k });
      const both = new Uint16Array(2 * n * n);
      both.set(p.im0);
      both.set(p.im1, n * n);
      await sharp(both, { raw: { width: n, height: 2 * n, channels: 1, pageHeight: n } })
        .toColourspace('grey16').tiff({ compression: 'deflate' }).toFile(join(dir, `cam${k}.tif`));
    }
    let params = setAt(pivSchema, defaults(pivSchema), 'series.path', dir);
    params = setAt(pivSchema, params, 'piv0.shape_crop_im0', 32);
    const plan = await planPiv(params, { threadsPerItem: 1 });
    assert.equal(plan.total, 2);
    assert.equal(plan.outputDir, `${dir}.piv`);
    const failures: string[] = [];
    await local(plan.job, { workers: 2, onItem: (o) => { if (!o.ok) failures.push(o.error!); } });
    assert.deepEqual(failures, []);
    for (const k of [1, 2]) {
      const r = await readPivFile(join(`${dir}.piv`, `piv_${k}.h5`));
      assert.deepEqual(r.names, [`cam${k}.tif`, `cam${k}.tif`]);
      const dx = r.passes[0].deltaxs;
      const mean = dx.reduce((s, v) => s + v, 0) / dx.length;
      assert.ok(Math.abs(mean - 2.5) < 0.05, `mean dx ${mean}`);
    }
    rmSync(`${dir}.piv`, { recursive: true, force: true });
  });
});
