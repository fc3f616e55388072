import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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

  it('masks of each image (mask.folder, mask.module), not of the reference: NaN final vectors in the band of the image compared', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fi-bos-masks-'));
    try {
      const dots = renderPair(makeField({ kind: 'uniform' }, [n, n]), { shape: [n, n], density: 0.05, diameter: 3, bitDepth: 8, noise: 0, seed: 5 });
      const ref = Float32Array.from(dots.im0);
      await writeImage(join(dir, 'img_00.png'), n, n, dots.im0);
      await writeImage(join(dir, 'img_01.png'), n, n, await distorted(ref, () => [1.2, 0.4]));
      await writeImage(join(dir, 'img_02.png'), n, n, await distorted(ref, () => [1.2, 0.4]));
      const masks = join(dir, 'masks');
      mkdirSync(masks);
      // Columns masked out per image; the reference's own mask must not be used.
      const bands: Record<string, [number, number]> = { 'img_00.png': [130, 170], 'img_01.png': [20, 60], 'img_02.png': [100, 140] };
      for (const [name, [x0, x1]] of Object.entries(bands)) {
        await writeImage(join(masks, name), n, n, new Uint8Array(n * n).map((_, i) => (i % n >= x0 && i % n <= x1 ? 0 : 255)));
      }
      const checkBand = async (file: string, band: [number, number], label: string) => {
        const f = (await readPivFile(file)).passes.at(-1)!.final!;
        let inside = 0;
        for (let k = 0; k < f.ixvecs_final.length; k++) {
          const x = f.ixvecs_final[k]!;
          const y = f.iyvecs_final[k]!;
          if (x >= band[0] && x <= band[1]) {
            inside++;
            assert.ok(Number.isNaN(f.deltaxs_final[k]), `${label}: x=${x} is in the image's masked band`);
          } else if ((x < band[0] - 16 || x > band[1] + 16) && x > 16 && x < n - 16 && y > 16 && y < n - 16) {
            assert.ok(Math.abs(f.deltaxs_final[k]! - 1.2) < 0.2, `${label}: x=${x}, y=${y}: ${f.deltaxs_final[k]} (the reference's band is not masked)`);
          }
        }
        assert.ok(inside > 0);
      };
      const common = ['--set', 'piv0.shape_crop_im0=32', '--set', 'multipass.number=2', '-q'];
      const byFolder = await runCli(['bos', join(dir, '*.png'), '-o', join(dir, 'folder'), '--set', `mask.folder=${masks}`, ...common]);
      assert.equal(byFolder.code, 0, byFolder.stderr);
      await checkBand(join(dir, 'folder', 'bos_01.h5'), bands['img_01.png']!, 'folder img_01');
      await checkBand(join(dir, 'folder', 'bos_02.h5'), bands['img_02.png']!, 'folder img_02');
      // A module gets each image (not the reference) and its name.
      const module = join(dir, 'band.mjs');
      writeFileSync(module, [
        `const bands = ${JSON.stringify(bands)};`,
        'export default function (image, name) {',
        '  const [x0, x1] = bands[name];',
        '  return Uint8Array.from({ length: image.width * image.height }, (_, i) => (i % image.width >= x0 && i % image.width <= x1 ? 0 : 1));',
        '}',
      ].join('\n'));
      const byModule = await runCli(['bos', join(dir, '*.png'), '-o', join(dir, 'module'), '--set', `mask.module=${module}`, ...common]);
      assert.equal(byModule.code, 0, byModule.stderr);
      await checkBand(join(dir, 'module', 'bos_01.h5'), bands['img_01.png']!, 'module img_01');
      await checkBand(join(dir, 'module', 'bos_02.h5'), bands['img_02.png']!, 'module img_02');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
