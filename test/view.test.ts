import assert from 'node:assert/strict';
import { cp, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeImage } from '../io/images.js';
import { readPivFile, writePivFile } from '../io/pivfile.js';
import type { PivResult } from '../results/piv_result.js';
import { colormap } from '../view/colormap.js';
import { renderFigure, type Figure } from '../view/figure.js';
import { findFirstImage, viewFile } from '../view/files.js';
import { glyphInk, textWidth } from '../view/font.js';
import { figX, figY } from '../view/frame.js';
import { formatNumber, niceStep, ticks } from '../view/numbers.js';
import { describeRun, makeTempDir, removeDir, REPO_ROOT, runCli } from './helpers/cli.js';

const META = { program: 'test', version: '0' };
const IMAGE_NX = 128;
const IMAGE_NY = 96;
const DARK_PLOT = [0x1e, 0x1e, 0x24];

/**
 * A one-pass result on an 8 x 6 grid (step 16 from 7.5) of an image 128 x 96, with the
 * displacement fn(x, y); vector `rejected` (if any) is NaN.
 */
function syntheticResult(fn: (x: number, y: number) => [number, number], rejected?: number, imagePath = '/nonexistent/a.png'): PivResult {
  const nx = 8;
  const ny = 6;
  const n = nx * ny;
  const xs = Float32Array.from({ length: n }, (_, i) => (i % nx) * 16 + 7.5);
  const ys = Float32Array.from({ length: n }, (_, i) => Math.floor(i / nx) * 16 + 7.5);
  const dx = new Float32Array(n);
  const dy = new Float32Array(n);
  for (let i = 0; i < n; i++) [dx[i], dy[i]] = fn(xs[i], ys[i]);
  const finalDx = dx.slice();
  const finalDy = dy.slice();
  const keys: number[] = [];
  if (rejected !== undefined) {
    dx[rejected] = Number.NaN;
    dy[rejected] = Number.NaN;
    keys.push(rejected);
  }
  return {
    names: ['a.png', 'b.png'], paths: [imagePath, '/nonexistent/b.png'], shape_images: [IMAGE_NY, IMAGE_NX], params: {},
    passes: [{
      xs, ys, deltaxs: dx, deltays: dy, correls_max: new Float32Array(n).fill(0.8),
      errors: { keys: Int32Array.from(keys), values: keys.map(() => 'correl < correl_min'), codes: Int32Array.from(keys.map(() => 2)) },
      shape_grid: [ny, nx],
      final: { ixvecs_final: xs.map(Math.round), iyvecs_final: ys.map(Math.round), deltaxs_final: finalDx, deltays_final: finalDy },
    }],
  };
}

/** RGBA pixels of a PNG file. */
async function decodePng(path: string): Promise<{ width: number; height: number; data: Buffer }> {
  const { data, info } = await sharp(path).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 4);
  return { width: info.width, height: info.height, data };
}

function pixel(png: { width: number; data: Buffer }, x: number, y: number): [number, number, number] {
  const p = (Math.round(y) * png.width + Math.round(x)) * 4;
  return [png.data[p], png.data[p + 1], png.data[p + 2]];
}

const isDark = (c: readonly number[]): boolean => c.every((v, i) => Math.abs(v - DARK_PLOT[i]) <= 2);

/** Mean and standard deviation of the grey level over a rectangle of the figure. */
function regionStats(png: { width: number; data: Buffer }, x0: number, y0: number, w: number, h: number): { mean: number; std: number } {
  let sum = 0;
  let sum2 = 0;
  let n = 0;
  for (let y = y0; y < y0 + h; y++) {
    for (let x = x0; x < x0 + w; x++) {
      const [r, g, b] = pixel(png, x, y);
      const grey = (r + g + b) / 3;
      sum += grey;
      sum2 += grey * grey;
      n++;
    }
  }
  const mean = sum / n;
  return { mean, std: Math.sqrt(Math.max(0, sum2 / n - mean * mean)) };
}

describe('view: figures of PIV results', function () {
  this.timeout(120_000);
  let dir: string;
  before(async () => {
    dir = await makeTempDir('view');
  });
  after(async () => {
    await removeDir(dir);
  });

  it('small pieces: font, number formatting, ticks', () => {
    for (const ch of '0123456789abcdefghijklmnopqrstuvwxyz.-px|()') assert.ok(glyphInk(ch).length > 0 || ch === ' ', `glyph ${ch}`);
    for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZ') {
      assert.ok(glyphInk(ch).length > 0, `glyph ${ch}`);
      assert.notDeepEqual(glyphInk(ch), glyphInk(ch.toLowerCase()), `${ch} is drawn as ${ch.toLowerCase()}: file names would change`);
    }
    assert.equal(textWidth('12 px', 1), 5 * 6 - 1);
    assert.equal(textWidth('12 px', 2), 2 * (5 * 6 - 1));
    assert.equal(formatNumber(0.0676123), '0.0676');
    assert.equal(formatNumber(-1.5e-5), '-1.5e-5');
    assert.equal(formatNumber(250), '250');
    assert.equal(niceStep(37), 50);
    assert.deepEqual(ticks(0, 127, 50), [0, 50, 100]);
    assert.equal(colormap('viridis').length, 256);
  });

  it('draws arrows, crosses for rejected vectors, axes and a scale arrow (no image)', async () => {
    const file = join(dir, 'piv_01-02.h5');
    await writePivFile(file, syntheticResult(() => [4, 0], 10), META);
    const out = join(dir, 'uniform.png');
    const fig = await viewFile(file, out, { scale: 2, zoom: 4 });
    assert.equal(fig.imageFound, false);
    assert.equal(fig.arrows, 47);
    assert.equal(fig.rejected, 1);
    const png = await decodePng(out);
    assert.equal(png.width, fig.canvas.width);
    assert.equal(png.height, fig.canvas.height);
    assert.equal(fig.frame.width, IMAGE_NX * 4);
    assert.equal(fig.frame.height, IMAGE_NY * 4);
    assert.ok(png.width > fig.frame.width + 20 && png.height > fig.frame.height + 20, 'margins for the axes');

    // Along the shaft of an arrow (vector 0 at (7.5, 7.5), 4 px * scale 2 = 8 image px): ink.
    const [x0, y0] = [7.5, 7.5];
    for (const t of [0.25, 0.5, 0.75]) {
      const c = pixel(png, figX(fig.frame, x0 + 8 * t), figY(fig.frame, y0));
      assert.ok(!isDark(c), `arrow pixel at t=${t} is ${c}`);
    }
    // Half-way between two rows of arrows: the dark plot.
    assert.ok(isDark(pixel(png, figX(fig.frame, 12), figY(fig.frame, 15.5))));
    // The rejected vector 10 = (2, 1) on the grid, at (39.5, 23.5): a red cross.
    const [r, g, b] = pixel(png, figX(fig.frame, 39.5), figY(fig.frame, 23.5));
    assert.ok(r > 200 && g < 90 && b < 90, `cross centre is ${[r, g, b]}`);
    // Tick labels and title are black ink in the margins.
    const bottom = regionStats(png, fig.frame.left, fig.frame.top + fig.frame.height + 2, fig.frame.width, png.height - fig.frame.top - fig.frame.height - 2);
    assert.ok(bottom.mean < 254 && bottom.std > 10, 'x tick labels');
    const title = regionStats(png, 0, 0, png.width, fig.frame.top - 2);
    assert.ok(title.std > 10, 'title and scale arrow');
    assert.equal(fig.colourBar, undefined);
  });

  it('colours the vorticity of a solid-body rotation and draws a colour bar with its limits', async () => {
    const w = 0.02;
    const file = join(dir, 'piv_02-03.h5');
    await writePivFile(file, syntheticResult((x, y) => [-w * (y - 48), w * (x - 64)]), META);
    const out = join(dir, 'rotation.png');
    const fig = await viewFile(file, out, { background: 'vorticity', zoom: 3 });
    assert.ok(fig.clim !== undefined && Math.abs(fig.clim[1] - 2 * w) < 1e-5 && Math.abs(fig.clim[0] + 2 * w) < 1e-5, `clim ${fig.clim}`);
    const png = await decodePng(out);
    const bar = fig.colourBar!;
    assert.ok(bar !== undefined && bar.left > fig.frame.left + fig.frame.width);
    const top = pixel(png, bar.left + bar.width / 2, bar.top + 1);
    const bottom = pixel(png, bar.left + bar.width / 2, bar.top + bar.height - 2);
    assert.ok(top[0] > 150 && top[2] < 80, `top of the bar is red: ${top}`);
    assert.ok(bottom[2] > 150 && bottom[0] < 100, `bottom of the bar is blue: ${bottom}`);
    // Limits written right of the bar.
    const labels = regionStats(png, bar.left + bar.width + 2, bar.top, png.width - bar.left - bar.width - 2, 10);
    assert.ok(labels.std > 10, 'max label');
    // Constant vorticity 2w = the top of the map: the plot away from arrows is red.
    const inside = pixel(png, figX(fig.frame, 60), figY(fig.frame, 47));
    assert.ok(inside[0] > 150 && inside[1] < 60, `plot colour ${inside}`);
  });

  it('shows the first image in grey when it exists, and a magnitude map over it', async () => {
    const imagePath = join(dir, 'a.png');
    const grey = new Uint8Array(IMAGE_NX * IMAGE_NY);
    for (let i = 0; i < grey.length; i++) grey[i] = (i * 37 + Math.floor(i / IMAGE_NX) * 11) % 256;
    await writeImage(imagePath, IMAGE_NX, IMAGE_NY, grey);
    const file = join(dir, 'piv_03-04.h5');
    await writePivFile(file, syntheticResult((x) => [x / 32, 1], undefined, imagePath), META);
    const withImage = await viewFile(file, join(dir, 'image.png'), { zoom: 2 });
    assert.equal(withImage.imageFound, true);
    const png = await decodePng(join(dir, 'image.png'));
    // Between arrow rows (y from 14 to 20 image px) the image shows: varied grey levels.
    const region = regionStats(png, withImage.frame.left + 4, Math.round(figY(withImage.frame, 14)), withImage.frame.width - 8, 12);
    assert.ok(region.std > 30, `image texture, std ${region.std}`);
    const without = await viewFile(file, join(dir, 'noimage.png'), { zoom: 2, image: false });
    assert.equal(without.imageFound, false);
    const dark = regionStats(await decodePng(join(dir, 'noimage.png')), without.frame.left + 4, Math.round(figY(without.frame, 14)), without.frame.width - 8, 12);
    assert.ok(dark.std < 1, 'no image: uniform plot');

    const mag = await viewFile(file, join(dir, 'magnitude.png'), { zoom: 2, background: 'magnitude' });
    assert.ok(mag.colourBar !== undefined && mag.clim !== undefined && mag.clim[0] === 0);
    const magPng = await decodePng(join(dir, 'magnitude.png'));
    const barColumn = regionStats(magPng, mag.colourBar.left + 2, mag.colourBar.top, mag.colourBar.width - 4, mag.colourBar.height);
    assert.ok(barColumn.std > 20, 'the colour bar is a gradient');
  });

  it('finds a moved image beside the result directory', async () => {
    const result = syntheticResult(() => [1, 1], undefined, '/elsewhere/run1/a.png');
    const found = await findFirstImage(join(dir, 'results.piv', 'piv_01-02.h5'), { ...result, names: ['a.png', 'b.png'] });
    assert.equal(found, undefined, 'nothing there');
    const moved = await findFirstImage(join(dir, 'piv_01-02.h5'), result);
    assert.ok(moved !== undefined && moved.width === IMAGE_NX, 'a.png next to the result file');
  });

  it('directory mode writes one PNG per result file with shared settings; --index picks one', async () => {
    const results = join(dir, 'series.piv');
    const out = join(dir, 'figs');
    await mkdir(results, { recursive: true });
    for (const k of [1, 2, 3]) await writePivFile(join(results, `piv_0${k}-0${k + 1}.h5`), syntheticResult(() => [k, 0]), META);
    const args = ['view', results, '-o', out, '--background', 'magnitude', '-q'];
    const run = await runCli(args);
    assert.equal(run.code, 0, describeRun(args, run));
    assert.deepEqual((await readdir(out)).sort(), ['piv_01-02.png', 'piv_02-03.png', 'piv_03-04.png']);
    for (const name of await readdir(out)) {
      const meta = await sharp(join(out, name)).metadata();
      assert.equal(meta.format, 'png');
    }
    const one = join(dir, 'one.png');
    const argsIndex = ['view', results, '--index', '1', '-o', one];
    const runIndex = await runCli(argsIndex);
    assert.equal(runIndex.code, 0, describeRun(argsIndex, runIndex));
    assert.equal(runIndex.stdout.trim(), one);
    const bad = await runCli(['view', results, '--index', '7', '-o', one]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--index 7 is out of range/);
  });

  it('on a real Karman result: the image, vorticity, timings', async () => {
    const images = join(dir, 'Karman');
    await cp(join(REPO_ROOT, 'samples', 'Karman'), images, { recursive: true });
    const pivArgs = ['piv', images, '-o', join(dir, 'Karman.piv'), '-q'];
    const piv = await runCli(pivArgs, { timeoutMs: 110_000 });
    assert.equal(piv.code, 0, describeRun(pivArgs, piv));
    const file = join(dir, 'Karman.piv', 'piv_01-02.h5');
    const args = ['view', file, '-o', join(dir, 'karman.png'), '--background', 'vorticity'];
    const run = await runCli(args);
    assert.equal(run.code, 0, describeRun(args, run));
    assert.doesNotMatch(run.stderr, /not found/);
    const png = await decodePng(join(dir, 'karman.png'));
    const result = await readPivFile(file);
    const image = await findFirstImage(file, result);
    assert.ok(image !== undefined);
    let fig: Figure = await renderFigure(result, image, { background: 'vorticity' });
    assert.equal(png.width, fig.canvas.width);
    assert.equal(png.height, fig.canvas.height);
    assert.equal(fig.frame.width, 524);
    assert.equal(fig.frame.height, 400);

    // Timings: rendering alone, and rendering + PNG encoding.
    const n = 20;
    let t0 = performance.now();
    for (let i = 0; i < n; i++) fig = await renderFigure(result, image, { background: 'vorticity' });
    const renderMs = (performance.now() - t0) / n;
    t0 = performance.now();
    for (let i = 0; i < n; i++) await (await renderFigure(result, image, { background: 'vorticity' })).canvas.toPng();
    const pngMs = (performance.now() - t0) / n;
    t0 = performance.now();
    for (let i = 0; i < n; i++) await viewFile(file, join(dir, 'karman_loop.png'), { background: 'vorticity' });
    const fileMs = (performance.now() - t0) / n;
    console.log(`      Karman ${fig.canvas.width}x${fig.canvas.height}: render ${renderMs.toFixed(1)} ms, + PNG ${pngMs.toFixed(1)} ms, ` +
      `whole file (read h5 + image + render + PNG + write) ${fileMs.toFixed(1)} ms per figure`);
    assert.ok(fileMs < 2000, 'a figure takes well under 2 s');
  });
});
