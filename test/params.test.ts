import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { applySets, formatParams, loadParamsFile } from '../params/load.js';
import { pivSchema } from '../params/piv.js';
import { defaults, leaves, merge, ParamError } from '../params/schema.js';
import type { ParamTree } from '../params/tree.js';

const isParamError = (key: string, re: RegExp) => (e: unknown) =>
  e instanceof ParamError && e.code === 'ERR_PARAM' && e.key === key && re.test(e.message);

describe('parameters', () => {
  it('has Fluidimage names and defaults', () => {
    const d = defaults(pivSchema);
    const piv0 = d.piv0 as ParamTree;
    assert.equal(piv0.shape_crop_im0, 48);
    assert.equal(piv0.method_subpix, '2d_gaussian2');
    assert.equal((piv0.grid as ParamTree).overlap, 0.5);
    assert.equal((d.fix as ParamTree).correl_min, 0.2);
    assert.equal((d.fix as ParamTree).threshold_diff_neighbour, 10);
    assert.equal((d.multipass as ParamTree).use_tps, 'last');
    assert.equal((d.series as ParamTree).str_subset, 'pairs');
    assert.equal((d.saving as ParamTree).how, 'complete');
    for (const [key, leaf] of leaves(pivSchema)) assert.ok(leaf.doc.length > 10, `${key} is documented`);
  });

  it('types --set values by the parameter and names the key in errors', () => {
    const d = defaults(pivSchema);
    const t = applySets(pivSchema, d, ['piv0.shape_crop_im0=32', 'multipass.use_tps=false', 'piv0.displacement_max=30%',
      'mask.strcrop=10:200, :', 'multipass.coeff_zoom=[2, 2]', 'fix.threshold_diff_neighbour=null']);
    assert.equal((t.piv0 as ParamTree).shape_crop_im0, 32);
    assert.equal((t.multipass as ParamTree).use_tps, false);
    assert.equal((t.piv0 as ParamTree).displacement_max, '30%');
    assert.equal((t.mask as ParamTree).strcrop, '10:200, :');
    assert.deepEqual((t.multipass as ParamTree).coeff_zoom, [2, 2]);
    assert.equal((t.fix as ParamTree).threshold_diff_neighbour, null);
    assert.equal((d.piv0 as ParamTree).shape_crop_im0, 48, 'defaults are not modified');
    assert.throws(() => applySets(pivSchema, d, ['piv0.nope=1']), isParamError('piv0.nope', /Unknown parameter piv0.nope.*shape_crop_im0/));
    assert.throws(() => applySets(pivSchema, d, ['piv0.shape_crop_im0=abc']),
      isParamError('piv0.shape_crop_im0', /^Expected an integer window size .* but received "abc"$/));
    assert.throws(() => applySets(pivSchema, d, ['piv0.grid.overlap=1.5']), isParamError('piv0.grid.overlap', /between 0 and 0.95 for piv0.grid.overlap but received 1.5/));
    assert.throws(() => applySets(pivSchema, d, ['piv0.displacement_max=150%']), isParamError('piv0.displacement_max', /percentage/));
    assert.throws(() => applySets(pivSchema, d, ['piv0=3']), isParamError('piv0', /group of parameters/));
    assert.throws(() => applySets(pivSchema, d, ['novalue']), /KEY=VALUE/);
    assert.throws(() => applySets(pivSchema, d, ['saving.how=ask']), isParamError('saving.how', /"complete", "recompute", "new_dir"/));
    assert.equal((applySets(pivSchema, d, ['multipass.spline_degree=5']).multipass as ParamTree).spline_degree, 5);
    assert.throws(() => applySets(pivSchema, d, ['multipass.spline_degree=6']), isParamError('multipass.spline_degree', /Expected 5 or 7 .* received 6/));
    assert.equal((d.multipass as ParamTree).predictor_spline_degree, 3);
    assert.equal((applySets(pivSchema, d, ['multipass.predictor_spline_degree=null']).multipass as ParamTree).predictor_spline_degree, null);
    assert.throws(() => applySets(pivSchema, d, ['multipass.predictor_spline_degree=4']),
      isParamError('multipass.predictor_spline_degree', /Expected 3, 5, 7 or null .* received 4/));
  });

  it('prints a params file that loads back to the same tree (YAML and JSON)', async () => {
    const d = defaults(pivSchema);
    const dir = mkdtempSync(join(tmpdir(), 'fi-params-'));
    try {
      const yamlText = formatParams(pivSchema, d, 'yaml');
      assert.match(yamlText, /# Interrogation window size/);
      writeFileSync(join(dir, 'p.yaml'), yamlText.replace('shape_crop_im0: 48', 'shape_crop_im0: 64'));
      const t = await loadParamsFile(pivSchema, join(dir, 'p.yaml'));
      assert.equal((t.piv0 as ParamTree).shape_crop_im0, 64);
      assert.deepEqual({ ...t, piv0: { ...(t.piv0 as ParamTree), shape_crop_im0: 48 } }, d);
      assert.deepEqual(JSON.parse(formatParams(pivSchema, d, 'json')), d);
      assert.deepEqual(parseYaml(yamlText), d);
      // A partial file keeps the other defaults; a bad key names the key and the file.
      writeFileSync(join(dir, 'partial.yaml'), 'multipass:\n  number: 2\n');
      assert.equal(((await loadParamsFile(pivSchema, join(dir, 'partial.yaml'))).multipass as ParamTree).number, 2);
      writeFileSync(join(dir, 'bad.yaml'), 'fix:\n  correl_mim: 0.3\n');
      await assert.rejects(loadParamsFile(pivSchema, join(dir, 'bad.yaml')), (e: unknown) =>
        e instanceof ParamError && /fix.correl_mim/.test(e.message) && e.message.includes('bad.yaml'));
      await assert.rejects(loadParamsFile(pivSchema, join(dir, 'none.yaml')), /no such file/);
      writeFileSync(join(dir, 'broken.json'), '{"piv0": ');
      await assert.rejects(loadParamsFile(pivSchema, join(dir, 'broken.json')), /Cannot parse params file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a non-mapping where a group is expected', () => {
    assert.throws(() => merge(pivSchema, defaults(pivSchema), { piv0: 3 }), isParamError('piv0', /mapping/));
  });
});
