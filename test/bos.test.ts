import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeImage } from '../io/images.js';
import { readPivFile } from '../io/pivfile.js';
import { native } from '../native.js';
import { makeField } from '../works/synth/fields.js';
import { renderPair } from '../works/synth/particles.js';
import { runCli } from './helpers/cli.js';

const n = 192;

/** The reference moved by the field s(x, y) (content at x - s goes to x), as an 8-bit image. */
async function distorted(ref: Float32Array, s: (x: number, y: number) => [number, number]): Promise<Uint8Array> {
  const g = 17;
  const xs = Float32Array.from({ length: g }, (_, i) => (i * (n - 1)) / (g - 1));
  const dx = new Float32Array(g * g);
  const dy = new Float32Array(g * g);
  for (let j = 0; j < g; j++) for (let i = 0; i < g; i++) [dx[j * g + i], dy[j * g + i]] = s(xs[i], xs[j]).map((v) => 2 * v);
  // deformPair samples image 0 at x - d/2: with d = 2 s, the content moves by +s.
  const out = await native().deformPair({ im0: ref, im1: ref, height: n, width: n, xs, ys: xs, dx, dy });
  return Uint8Array.from(out.im0, (v) => (Number.isNaN(v) ? 0 : Math.max(0, Math.min(255, Math.round(v)))));
}

describe('BOS topology', function () {
  this.timeout(60_000);
  it('recovers a uniform shift and a smooth distortion against the reference image', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fi-bos-'));
    try {
      const dots = renderPair(makeField({ kind: 'uniform' }, [n, n]), { shape: [n, n], density: 0.05, diameter: 3, bitDepth: 8, noise: 0, seed: 4 });
      const ref = Float32Array.from(dots.im0);
      const lens = (x: number, y: number): [number, number] => [1.5 * Math.sin((2 * Math.PI * x) / n), -Math.cos((2 * Math.PI * y) / n)];
      await writeImage(join(dir, 'img_00.png'), n, n, dots.im0);
      await writeImage(join(dir, 'img_01.png'), n, n, await distorted(ref, () => [1.3, -0.6]));
      await writeImage(join(dir, 'img_02.png'), n, n, await distorted(ref, lens));
      const out = join(dir, 'out');
      const r = await runCli(['bos', dir, '-o', out, '--set', 'piv0.shape_crop_im0=32', '--set', 'multipass.number=2']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /2 image\(s\) in the series/);
      assert.deepEqual(readdirSync(out).filter((f) => f.endsWith('.h5')).sort(), ['bos_01.h5', 'bos_02.h5']);
      const check = async (file: string, truth: (x: number, y: number) => [number, number], tol: number) => {
        const res = await readPivFile(join(out, file));
        assert.deepEqual(res.names, ['img_00.png', file.replace('bos_', 'img_').replace('.h5', '.png')]);
        const f = res.passes[res.passes.length - 1].final!;
        let se = 0;
        let c = 0;
        for (let k = 0; k < f.deltaxs_final.length; k++) {
          const x = f.ixvecs_final[k];
          const y = f.iyvecs_final[k];
          if (x < 24 || y < 24 || x > n - 24 || y > n - 24) continue;
          const [tx, ty] = truth(x, y);
          se += (f.deltaxs_final[k] - tx) ** 2 + (f.deltays_final[k] - ty) ** 2;
          c++;
        }
        const rms = Math.sqrt(se / (2 * c));
        assert.ok(rms < tol, `${file}: RMS ${rms}`);
      };
      await check('bos_01.h5', () => [1.3, -0.6], 0.05);
      await check('bos_02.h5', lens, 0.12);
      // The reference may also be given as a path; a bad index names the parameter.
      const bad = await runCli(['bos', dir, '-o', join(dir, 'bad'), '--set', 'reference=7']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /for reference but received 7/);
      const byPath = await runCli(['bos', join(dir, 'img_0[12].png'), '-o', join(dir, 'bypath'), '--set', `reference=${join(dir, 'img_00.png')}`, '-q']);
      assert.equal(byPath.code, 0, byPath.stderr);
      assert.deepEqual(readdirSync(join(dir, 'bypath')).filter((f) => f.endsWith('.h5')).sort(), ['bos_01.h5', 'bos_02.h5']);
      // A corrupt image fails alone (exit 1); `complete` then computes exactly the missing result.
      const { copyFileSync, rmSync: rm, writeFileSync: wf } = await import('node:fs');
      copyFileSync(join(dir, 'img_01.png'), join(dir, 'img_03.png'));
      wf(join(dir, 'img_04.png'), 'not an image');
      // The same parameters as the first run (others would be refused: results of other parameters).
      const broken = await runCli(['bos', dir, '-o', out, '--set', 'piv0.shape_crop_im0=32', '--set', 'multipass.number=2']);
      assert.equal(broken.code, 1, broken.stderr);
      assert.match(broken.stderr, /2 already done, 2 to compute/);
      assert.match(broken.stderr, /FAILED img_04\.png: Cannot read image .*img_04\.png/);
      assert.deepEqual(readdirSync(out).filter((f) => f.endsWith('.h5')).sort(), ['bos_01.h5', 'bos_02.h5', 'bos_03.h5']);
      rm(join(dir, 'img_04.png'));
      rm(join(out, 'bos_02.h5'));
      const again = await runCli(['bos', dir, '-o', out, '--set', 'piv0.shape_crop_im0=32', '--set', 'multipass.number=2']);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /3 image\(s\) in the series, 2 already done, 1 to compute/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
