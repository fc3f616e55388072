import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPivFile } from '../io/pivfile.js';
import { loadIm2im } from '../works/im2im.js';
import { runCli } from './helpers/cli.js';

describe('image-to-image functions (preproc.im2im)', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fi-im2im-'));
    // A function: blanks the left half of the image (no texture there, hence no vectors).
    writeFileSync(join(dir, 'blank_left.mjs'), `export default function blank(im) {
  const out = Float32Array.from(im.data);
  for (let y = 0; y < im.height; y++) for (let x = 0; x < im.width / 2; x++) out[y * im.width + x] = 10;
  return { data: out, width: im.width, height: im.height };
}\n`);
    // A class with constructor arguments (Fluidimage's args_init) and a calcul method.
    writeFileSync(join(dir, 'scale.mjs'), `export class Scale {
  constructor(factor, offset) { this.factor = factor; this.offset = offset; }
  calcul(im, name) { return im.data.map((v) => v * this.factor + this.offset); }
}
export const broken = () => { throw new Error('on purpose'); };\n`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loads a function or a class with args_init, and checks what they return', async () => {
    const im = { data: Float32Array.from([1, 2, 3, 4]), width: 2, height: 2 };
    const scale = await loadIm2im(`${join(dir, 'scale.mjs')}#Scale`, [2, 1]);
    assert.deepEqual(Array.from((await scale(im, 'x')).data), [3, 5, 7, 9]);
    const blank = await loadIm2im(join(dir, 'blank_left.mjs'));
    assert.deepEqual(Array.from((await blank(im, 'x')).data), [10, 2, 10, 4]);
    const broken = await loadIm2im(`${join(dir, 'scale.mjs')}#broken`);
    await assert.rejects(broken(im, 'a.png'), /scale.mjs#broken failed on a.png: on purpose/);
    await assert.rejects(loadIm2im(join(dir, 'nope.mjs')), /no such file/);
    await assert.rejects(loadIm2im(`${join(dir, 'scale.mjs')}#Other`), /export a function or a class as "Other"/);
    writeFileSync(join(dir, 'f.ts'), 'export default (x: unknown) => x;\n');
    await assert.rejects(loadIm2im(join(dir, 'f.ts')), /compiled to JavaScript/);
  });

  it('is applied to both images of each pair in piv; errors name the parameter or the pair', async () => {
    const images = join(dir, 'images');
    assert.equal((await runCli(['synth', 'uniform', '-o', images, '--pairs', '2', '--size', '128'])).code, 0);
    const out = join(dir, 'out');
    const r = await runCli(['piv', images, '-o', out, '--set', 'piv0.shape_crop_im0=32', '--set', `preproc.im2im=${join(dir, 'blank_left.mjs')}`]);
    assert.equal(r.code, 0, r.stderr);
    const res = await readPivFile(join(out, 'piv_0001ab.h5'));
    const p = res.passes[0];
    for (let k = 0; k < p.xs.length; k++) {
      if (p.xs[k] + 16 <= 64) assert.ok(Number.isNaN(p.deltaxs[k]), `blanked at x=${p.xs[k]}`);
      if (p.xs[k] - 16 >= 64) assert.ok(Math.abs(p.deltaxs[k] - 3.3) < 0.2, `x=${p.xs[k]}: ${p.deltaxs[k]}`);
    }
    assert.equal(((res.params.preproc as Record<string, unknown>).im2im as string).endsWith('blank_left.mjs'), true);
    const missing = await runCli(['piv', images, '-o', join(dir, 'o2'), '--set', 'preproc.im2im=/no/such.mjs']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /Cannot load preproc.im2im: no such file \/no\/such.mjs/);
    const failing = await runCli(['piv', images, '-o', join(dir, 'o3'), '--set', `preproc.im2im=${join(dir, 'scale.mjs')}#broken`]);
    assert.equal(failing.code, 1);
    assert.match(failing.stderr, /FAILED im0001a.png \+ im0001b.png: preproc.im2im .*#broken failed on im0001a.png: on purpose/);
  });

  it('the im2im command writes every image through the function, names and bit depth kept; complete; errors', async () => {
    const images = join(dir, 'images16');
    assert.equal((await runCli(['synth', 'noisy16', '-o', images, '--pairs', '2', '--size', '64'])).code, 0);
    const out = join(dir, 'im2im.out');
    const r = await runCli(['im2im', images, '-o', out, '--set', `im2im=${join(dir, 'scale.mjs')}#Scale`, '--set', 'args_init=[2, 1]']);
    assert.equal(r.code, 0, r.stderr);
    const names = ['im0001a.png', 'im0001b.png', 'im0002a.png', 'im0002b.png'];
    assert.deepEqual((await import('node:fs')).readdirSync(out).filter((f) => f.endsWith('.png')).sort(), names);
    const { readImage } = await import('../io/images.js');
    for (const name of names) {
      const a = await readImage(join(images, name));
      const b = await readImage(join(out, name));
      assert.equal(b.bitDepth, 16);
      for (let i = 0; i < a.data.length; i += 97) assert.equal(b.data[i], Math.min(65535, 2 * a.data[i] + 1));
    }
    const again = await runCli(['im2im', images, '-o', out, '--set', `im2im=${join(dir, 'scale.mjs')}#Scale`, '--set', 'args_init=[2, 1]']);
    assert.match(again.stderr, /4 already done, 0 to compute/);
    // A corrupt image fails alone, named; the others are written.
    (await import('node:fs')).writeFileSync(join(images, 'im0003a.png'), 'not an image');
    const broken = await runCli(['im2im', images, '-o', out, '--set', `im2im=${join(dir, 'scale.mjs')}#Scale`, '--set', 'args_init=[2, 1]']);
    assert.equal(broken.code, 1, broken.stderr);
    assert.match(broken.stderr, /FAILED im0003a\.png: Cannot read image .*im0003a\.png/);
    assert.match(broken.stderr, /4 already done, 1 to compute/);
    const none = await runCli(['im2im', images, '-o', join(dir, 'x')]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /Expected a JavaScript module for im2im/);
  });

  it('compute commands start with the C allocator tuned, keeping values the user set', async function () {
    // The im2im function runs inside the computing process: it reports that process's environment.
    writeFileSync(join(dir, 'env.mjs'), `import { writeFileSync } from 'node:fs';
export default function record(im) {
  const e = process.env;
  writeFileSync(e.FI_ENV_OUT, JSON.stringify({ mmap: e.MALLOC_MMAP_THRESHOLD_ ?? null, arenas: e.MALLOC_ARENA_MAX ?? null }));
  return im;
}\n`);
    const images = join(dir, 'images-env');
    assert.equal((await runCli(['synth', 'uniform', '-o', images, '--pairs', '1', '--size', '64'])).code, 0);
    const report = join(dir, 'env.json');
    const run = async (env: NodeJS.ProcessEnv) => {
      const r = await runCli(['piv', images, '-o', join(dir, `o-env-${Object.keys(env).length}`), '--workers', '1',
        '--set', 'piv0.shape_crop_im0=32', '--set', `preproc.im2im=${join(dir, 'env.mjs')}`], {
        env: { MALLOC_MMAP_THRESHOLD_: undefined, MALLOC_ARENA_MAX: undefined, FI_ENV_OUT: report, ...env },
      });
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(readFileSync(report, 'utf8')) as { mmap: string | null; arenas: string | null };
    };
    if (process.platform !== 'linux') this.skip();
    assert.deepEqual(await run({}), { mmap: '131072', arenas: '4' });
    assert.deepEqual(await run({ MALLOC_ARENA_MAX: '1' }), { mmap: '131072', arenas: '1' });
  });
});
