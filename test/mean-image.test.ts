/**
 * Mean image: partial sums against a direct computation (exact for integer images,
 * whatever the split), and `fluidimage mean-image` on synthetic series (constant and
 * random stacks, 8 and 16-bit, --how complete, a corrupt image, bad parameters).
 */
import assert from 'node:assert/strict';
import { mkdir, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { readFloat32, readNumberAttr, readStrings, withH5File } from '../io/h5.js';
import { readImage, writeImage } from '../io/images.js';
import { meanImageSchema } from '../params/mean_image.js';
import { defaults } from '../params/schema.js';
import { ImageSums } from '../works/mean_image.js';
import { describeRun, listDir, makeTempDir, mtimes, removeDir, runCli, type CliResult } from './helpers/cli.js';

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function randomStack(n: number, size: number, top: number, seed: number): Uint16Array[] {
  const r = random(seed);
  return Array.from({ length: n }, () => Uint16Array.from({ length: size }, () => Math.floor(r() * top)));
}

/** Direct statistics: float64, two passes, images in the given order. */
function direct(stack: readonly ArrayLike<number>[]): { mean: number[]; min: number[]; max: number[]; std: number[] } {
  const n = stack.length;
  const size = stack[0]!.length;
  const mean: number[] = [];
  const min: number[] = [];
  const max: number[] = [];
  const std: number[] = [];
  for (let i = 0; i < size; i++) {
    const v = stack.map((s) => s[i]!);
    const m = v.reduce((a, b) => a + b, 0) / n;
    mean.push(m);
    min.push(Math.min(...v));
    max.push(Math.max(...v));
    std.push(Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / n));
  }
  return { mean, min, max, std };
}

describe('mean image: partial sums', () => {
  const all = { min: true, max: true, std: true };

  it('equals a direct computation exactly (mean, min, max), whatever the split and order', () => {
    const stack = randomStack(9, 500, 65536, 3);
    const d = direct(stack);
    const whole = new ImageSums(500, all);
    stack.forEach((s) => whole.add(s));
    // Three workers with interleaved images, merged in another order.
    const parts = [0, 1, 2].map(() => new ImageSums(500, all));
    [...stack].reverse().forEach((s, k) => parts[k % 3]!.add(s));
    parts[2]!.merge(parts[0]!);
    parts[2]!.merge(parts[1]!);
    for (const sums of [whole, parts[2]!]) {
      const r = sums.result();
      assert.equal(r.count, 9);
      assert.deepEqual(Array.from(r.mean), d.mean);
      assert.deepEqual(Array.from(r.min!), d.min);
      assert.deepEqual(Array.from(r.max!), d.max);
      r.std!.forEach((v, i) => assert.ok(Math.abs(v - d.std[i]!) <= 1e-9 * Math.max(1, d.std[i]!), `std at ${i}: ${v} vs ${d.std[i]}`));
    }
  });

  it('of constant images is that constant, with std 0; optional statistics are left out', () => {
    const sums = new ImageSums(4, { min: false, max: false, std: true });
    for (let k = 0; k < 7; k++) sums.add(Uint8Array.from([77, 77, 77, 77]));
    const r = sums.result();
    assert.deepEqual(Array.from(r.mean), [77, 77, 77, 77]);
    assert.deepEqual(Array.from(r.std!), [0, 0, 0, 0]);
    assert.equal(r.min, undefined);
    assert.equal(r.max, undefined);
    assert.throws(() => new ImageSums(4, all).result(), /no image/);
    assert.throws(() => sums.add(new Uint8Array(5)), /5 pixels/);
  });
});

describe('fluidimage mean-image (command line)', function () {
  this.timeout(120_000);
  let dir: string;
  const nx = 21;
  const ny = 13;

  beforeEach(async () => {
    dir = await makeTempDir('mean-image');
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  async function cli(args: string[], expected: number): Promise<CliResult> {
    const r = await runCli(args, { timeoutMs: 90_000 });
    assert.equal(r.code, expected, describeRun(args, r));
    return r;
  }

  async function writeSeries(sub: string, stack: readonly (Uint8Array | Uint16Array)[]): Promise<string[]> {
    await mkdir(join(dir, sub), { recursive: true });
    const names: string[] = [];
    for (const [k, data] of stack.entries()) {
      const name = `frame_${String(k + 1).padStart(3, '0')}.png`;
      await writeImage(join(dir, sub, name), nx, ny, data);
      names.push(name);
    }
    return names;
  }

  async function h5(path: string, name: string): Promise<Float32Array> {
    const data = await withH5File(path, 'r', (f) => readFloat32(f, name));
    assert.ok(data, `${name} in ${path}`);
    return data;
  }

  it('of constant images is that constant (8-bit image and HDF5 file)', async () => {
    await writeSeries('in', Array.from({ length: 5 }, () => new Uint8Array(nx * ny).fill(77)));
    const r = await cli(['mean-image', join(dir, 'in')], 0);
    const out = join(dir, 'in.mean_image');
    assert.equal(r.stdout.trim(), out);
    assert.deepEqual(await listDir(out), ['mean.h5', 'mean.png']);
    const im = await readImage(join(out, 'mean.png'));
    assert.equal(im.bitDepth, 8);
    assert.ok(im.data.every((v) => v === 77));
    const file = join(out, 'mean.h5');
    assert.ok((await h5(file, 'mean')).every((v) => v === 77));
    assert.ok((await h5(file, 'std')).every((v) => v === 0));
    assert.ok((await h5(file, 'min')).every((v) => v === 77));
    assert.equal(await withH5File(file, 'r', (f) => readNumberAttr(f, 'nb_images')), 5);
  });

  it('of a random 16-bit stack equals a direct computation; 16-bit kept; every statistic as an image on request', async () => {
    const stack = randomStack(6, nx * ny, 65536, 11);
    await writeSeries('in', stack);
    await cli(['mean-image', join(dir, 'in'), '-o', join(dir, 'res'), '--set', 'saving.images=[mean, min, max, std]', '--workers', '3'], 0);
    const d = direct(stack);
    const out = join(dir, 'res');
    assert.deepEqual(await listDir(out), ['max.png', 'mean.h5', 'mean.png', 'min.png', 'std.png']);
    const mean = await readImage(join(out, 'mean.png'));
    assert.equal(mean.bitDepth, 16);
    assert.deepEqual(Array.from(mean.data), d.mean.map((v) => Math.round(v)));
    assert.deepEqual(Array.from((await readImage(join(out, 'min.png'))).data), d.min);
    assert.deepEqual(Array.from((await readImage(join(out, 'max.png'))).data), d.max);
    const file = join(out, 'mean.h5');
    assert.deepEqual(Array.from(await h5(file, 'mean')), d.mean.map((v) => Math.fround(v)));
    assert.deepEqual(Array.from(await h5(file, 'min')), d.min);
    const std = await h5(file, 'std');
    std.forEach((v, i) => assert.ok(Math.abs(v - d.std[i]!) <= 1e-6 * d.std[i]! + 1e-3, `std at ${i}`));
    const sources = await withH5File(file, 'r', (f) => readStrings(f, 'sources/names'));
    assert.equal(sources?.length, 6);
  });

  it('--how complete: nothing to do when the results exist; recompute writes again', async () => {
    await writeSeries('in', randomStack(3, nx * ny, 256, 5).map((s) => Uint8Array.from(s)));
    const args = ['mean-image', join(dir, 'in')];
    await cli(args, 0);
    const out = join(dir, 'in.mean_image');
    const before = await mtimes(out, ['mean.h5', 'mean.png']);
    await new Promise((r) => setTimeout(r, 30));
    const r = await cli(args, 0);
    assert.match(r.stderr, /nothing to do/);
    assert.deepEqual(await mtimes(out, ['mean.h5', 'mean.png']), before);
    await cli([...args, '--how', 'recompute'], 0);
    assert.notDeepEqual(await mtimes(out, ['mean.h5', 'mean.png']), before);
  });

  it('a corrupt image is reported by name, the others averaged (exit 1); complete then computes again', async () => {
    const stack = randomStack(4, nx * ny, 65536, 8);
    const names = await writeSeries('in', stack);
    const broken = join(dir, 'in', names[1]!);
    await truncate(broken, Math.floor((await stat(broken)).size / 2));
    const r = await cli(['mean-image', join(dir, 'in')], 1);
    assert.match(r.stderr, new RegExp(`FAILED ${names[1]}`));
    assert.ok(r.stderr.includes(broken));
    const file = join(dir, 'in.mean_image', 'mean.h5');
    const d = direct([stack[0]!, stack[2]!, stack[3]!]);
    assert.deepEqual(Array.from(await h5(file, 'mean')), d.mean.map((v) => Math.fround(v)));
    assert.equal(await withH5File(file, 'r', (f) => readNumberAttr(f, 'nb_failed')), 1);
    assert.deepEqual(await withH5File(file, 'r', (f) => readStrings(f, 'sources/failed')), [names[1]]);
    const again = await cli(['mean-image', join(dir, 'in')], 1);
    assert.doesNotMatch(again.stderr, /nothing to do/);
  });

  it('bad parameters: exit 2 naming the key; `params mean-image` prints the defaults', async () => {
    await writeSeries('in', [new Uint8Array(nx * ny)]);
    const r = await cli(['mean-image', join(dir, 'in'), '--set', 'statistics.median=true'], 2);
    assert.match(r.stderr, /statistics\.median/);
    const r2 = await cli(['mean-image', join(dir, 'in'), '--set', 'saving.images=[min]', '--set', 'statistics.min=false'], 2);
    assert.match(r2.stderr, /saving\.images/);
    const p = await cli(['params', 'mean-image'], 0);
    assert.deepEqual(parseYaml(p.stdout), defaults(meanImageSchema));
  });
});
