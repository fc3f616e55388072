/**
 * `fluidimage viewer`: the HTTP API (files, result, figure, job, path safety) and the page
 * itself in a real headless Chromium (file list, stepping, figure options, vector details,
 * job progress, screenshot). The browser part is skipped when /usr/bin/chromium is missing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { readPivFile } from '../io/pivfile.js';
import type { ResultJson } from '../viewer/results.js';
import { startViewer, type Viewer } from '../viewer/server.js';
import type { PassResult } from '../results/piv_result.js';
import { describeRun, makeTempDir, removeDir, REPO_ROOT, RUN_JS, runCli } from './helpers/cli.js';
import { CHROMIUM, CHROMIUM_ARGS, httpGet, json, printedUrl } from './helpers/viewer.js';

const FILES = ['piv_01-02.h5', 'piv_02-03.h5', 'piv_03-04.h5'];
const VIEWPORT = { width: 1280, height: 800 };

/** The float32 `stored` and the number `shown` (JSON or page text; null/'NaN' for NaN) are the same value. */
function sameF32(shown: number | string | null, stored: number, what: string): void {
  if (Number.isNaN(stored)) {
    assert.ok(shown === null || shown === 'NaN', `${what}: expected NaN, got ${shown}`);
    return;
  }
  assert.ok(shown !== null && shown !== 'NaN', `${what}: expected ${stored}, got ${shown}`);
  assert.equal(Math.fround(Number(shown)), stored, `${what}: ${shown} is not the stored ${stored}`);
}

interface FramePx {
  left: number;
  top: number;
  width: number;
  height: number;
  zx: number;
  zy: number;
}

describe('viewer (fluidimage viewer OUTDIR)', function () {
  let tmp: string | undefined;
  let outdir = '';
  let viewer: Viewer | undefined;
  const url = (path: string): string => new URL(path, viewer?.url).href;

  before(async function () {
    this.timeout(60_000);
    tmp = await makeTempDir('viewer');
    await cp(join(REPO_ROOT, 'samples', 'Karman'), join(tmp, 'Karman'), { recursive: true });
    outdir = join(tmp, 'out');
    const args = ['piv', join(tmp, 'Karman'), '-o', outdir, '-q'];
    const r = await runCli(args);
    assert.equal(r.code, 0, describeRun(args, r));
    viewer = await startViewer(outdir, { port: 0 });
  });

  after(async () => {
    await viewer?.close();
    await removeDir(tmp);
  });

  describe('HTTP API', () => {
    it('listens on 127.0.0.1 and serves the page with a same-origin-only policy', async () => {
      assert.match(viewer?.url ?? '', /^http:\/\/127\.0\.0\.1:\d+\/$/);
      const r = await httpGet(url('/'));
      assert.equal(r.status, 200);
      assert.match(String(r.headers['content-type']), /^text\/html/);
      assert.match(String(r.headers['content-security-policy']), /default-src 'none'/);
      const html = r.body.toString('utf8');
      assert.match(html, /<title>fluidimage viewer<\/title>/);
      // Nothing fetched from elsewhere.
      assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//);
    });

    it('/api/files lists the result files', async () => {
      const r = await httpGet(url('/api/files'));
      assert.equal(r.status, 200);
      assert.deepEqual(json<{ files: string[] }>(r).files, FILES);
    });

    it('/api/result gives the vectors and errors of the last pass, as stored', async () => {
      const r = await httpGet(url(`/api/result?file=${FILES[1]}`));
      assert.equal(r.status, 200);
      const got = json<ResultJson>(r);
      const stored = await readPivFile(join(outdir, FILES[1]));
      const pass = stored.passes[stored.passes.length - 1];
      assert.equal(got.file, FILES[1]);
      assert.deepEqual(got.names, stored.names);
      assert.deepEqual(got.shape_grid, pass.shape_grid);
      assert.equal(got.nb_passes, stored.passes.length);
      assert.equal(got.step, 16);
      const columns: ['x' | 'y' | 'dx' | 'dy' | 'correl', Float32Array][] = [
        ['x', pass.xs], ['y', pass.ys], ['dx', pass.deltaxs], ['dy', pass.deltays], ['correl', pass.correls_max],
      ];
      for (const [key, data] of columns) {
        assert.equal(got[key].length, data.length, key);
        data.forEach((v, i) => sameF32(got[key][i], v, `${key}[${i}]`));
      }
      assert.ok(pass.errors.keys.length > 0, 'the Karman results have rejected vectors');
      assert.deepEqual(got.errors, { index: Array.from(pass.errors.keys), code: Array.from(pass.errors.codes), message: pass.errors.values });
    });

    it('/api/figure draws PNGs with the plot frame, for each option', async () => {
      const figure = async (query: string) => {
        const r = await httpGet(url(`/api/figure?file=${FILES[0]}&${query}`));
        assert.equal(r.status, 200, r.body.toString());
        assert.equal(r.headers['content-type'], 'image/png');
        const { data, info } = await sharp(r.body).raw().toBuffer({ resolveWithObject: true });
        return { data, info, frame: JSON.parse(String(r.headers['x-plot-frame'])) as FramePx, imageFound: r.headers['x-image-found'] };
      };
      const plain = await figure('background=none&image=a&vectors=1');
      assert.equal(plain.imageFound, '1');
      // Karman images are 524 x 400: drawn at zoom 1.
      assert.deepEqual([plain.frame.width, plain.frame.height, plain.frame.zx, plain.frame.zy], [524, 400, 1, 1]);
      assert.ok(plain.info.width > plain.frame.left + plain.frame.width && plain.info.height > plain.frame.top + plain.frame.height);
      const vorticity = await figure('background=vorticity&image=a&vectors=1');
      assert.ok(vorticity.info.width > plain.info.width, 'a colour bar is added on the right');
      assert.deepEqual(vorticity.frame, plain.frame);
      const imageB = await figure('background=none&image=b&vectors=1');
      const noVectors = await figure('background=none&image=a&vectors=0');
      const noImage = await figure('background=none&image=none&vectors=1');
      for (const [name, other] of [['image b', imageB], ['no vectors', noVectors], ['no image', noImage]] as const) {
        assert.deepEqual(other.info.width, plain.info.width, name);
        assert.ok(!other.data.equals(plain.data), `${name} changes the figure`);
      }
    });

    it('refuses names that leave the directory or are not results (400)', async () => {
      const outside = join(tmp ?? '', 'outside.h5');
      await copyFile(join(outdir, FILES[0]), outside);
      await symlink(outside, join(outdir, 'link.h5'));
      try {
        for (const name of ['../../etc/passwd', '/etc/passwd', `../out/${FILES[0]}`, `./${FILES[0]}`, 'link.h5', '', 'job_x/info.json', `${FILES[0]}\0`]) {
          for (const endpoint of ['result', 'figure']) {
            const r = await httpGet(url(`/api/${endpoint}?file=${encodeURIComponent(name)}`));
            assert.equal(r.status, 400, `${endpoint} ${JSON.stringify(name)}: ${r.status} ${r.body.toString()}`);
            assert.ok(json<{ error: string }>(r).error.length > 0);
          }
        }
        // Without the parameter, and a raw (not encoded) traversal.
        assert.equal((await httpGet(url('/api/result'))).status, 400);
        assert.equal((await httpGet(`${viewer?.url}api/result?file=../../etc/passwd`)).status, 400);
        // The link outside is not listed either.
        assert.deepEqual(json<{ files: string[] }>(await httpGet(url('/api/files'))).files, FILES);
      } finally {
        await rm(join(outdir, 'link.h5'), { force: true });
      }
    });

    it('answers 404, 405, 403 and 400 where it should', async () => {
      assert.equal((await httpGet(url('/nope'))).status, 404);
      assert.equal((await httpGet(url('/api/nope'))).status, 404);
      assert.equal((await httpGet(url('/etc/passwd'))).status, 404);
      assert.equal((await httpGet(url('/api/result?file=missing.h5'))).status, 404);
      assert.equal((await httpGet(url('/api/files'), { method: 'POST' })).status, 405);
      // DNS rebinding: a page of another site resolving to 127.0.0.1.
      assert.equal((await httpGet(url('/api/files'), { headers: { Host: 'evil.example:80' } })).status, 403);
      assert.equal((await httpGet(url(`/api/figure?file=${FILES[0]}&background=rainbow`))).status, 400);
      assert.equal((await httpGet(url(`/api/figure?file=${FILES[0]}&image=c`))).status, 400);
    });

    it('/api/job reports the job of the directory', async () => {
      const r = await httpGet(url('/api/job'));
      assert.equal(r.status, 200);
      const job = json<{ state: string; done: number; toCompute: number; failed: unknown[]; jobDir: string }>(r);
      assert.equal(job.state, 'finished');
      assert.equal(job.done, 3);
      assert.equal(job.toCompute, 3);
      assert.deepEqual(job.failed, []);
      assert.match(job.jobDir, /job_[^/]+$/);
    });

    it('startViewer rejects a missing directory; an empty one has no files and no job', async () => {
      await assert.rejects(startViewer(join(outdir, 'missing')), { code: 'ERR_INPUT' });
      const emptyDir = join(tmp ?? '', 'empty');
      await mkdir(emptyDir);
      const empty = await startViewer(emptyDir, { port: 0 });
      try {
        assert.deepEqual(json<{ files: string[] }>(await httpGet(new URL('api/files', empty.url).href)).files, []);
        const job = json<{ state: string; message: string }>(await httpGet(new URL('api/job', empty.url).href));
        assert.equal(job.state, 'none');
        assert.match(job.message, /No job directory/);
      } finally {
        await empty.close();
      }
    });

    it('the command prints its URL and stops cleanly on SIGTERM', async function () {
      this.timeout(20_000);
      const child = spawn(process.execPath, [RUN_JS, 'viewer', outdir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        const printed = await printedUrl(child);
        assert.deepEqual(json<{ files: string[] }>(await httpGet(new URL('api/files', printed).href)).files, FILES);
        const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
        child.kill('SIGTERM');
        assert.equal(await exited, 0);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    });
  });

  describe('the page in headless Chromium', function () {
    this.timeout(30_000);
    let browser: Browser | undefined;
    let page: Page;
    const pageErrors: string[] = [];

    before(async function () {
      if (!existsSync(CHROMIUM)) {
        process.stdout.write(`      skipping the browser tests: ${CHROMIUM} is missing (apt-get install chromium)\n`);
        this.skip();
      }
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      page = await browser.newPage({ viewport: VIEWPORT });
      page.on('pageerror', (e) => pageErrors.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error') pageErrors.push(m.text());
      });
      await page.goto(viewer?.url ?? '');
    });

    after(async () => {
      await browser?.close();
    });

    /** Waits until the figure shown is loaded with these settings (data-* set on load). */
    async function waitForFigure(expected: Record<string, string>): Promise<void> {
      await page.waitForFunction((exp) => {
        const img = document.getElementById('figure') as HTMLImageElement | null;
        return img !== null && img.complete && img.naturalWidth > 0 && Object.entries(exp).every(([k, v]) => img.dataset[k] === v);
      }, expected);
    }

    /** Size and a fingerprint of the pixels of the figure shown (read back through a canvas). */
    function figurePixels(): Promise<{ width: number; height: number; std: number; hash: number }> {
      return page.evaluate(() => {
        const img = document.getElementById('figure') as HTMLImageElement;
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth;
        canvas.height = img.naturalHeight;
        const ctx = canvas.getContext('2d');
        if (ctx === null) throw new Error('no 2d context');
        ctx.drawImage(img, 0, 0);
        const d = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        let sum = 0;
        let sum2 = 0;
        let hash = 0;
        for (let i = 0; i < d.length; i += 4) {
          const g = (d[i] + d[i + 1] + d[i + 2]) / 3;
          sum += g;
          sum2 += g * g;
          hash = (Math.imul(hash, 31) + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) >>> 0;
        }
        const n = d.length / 4;
        return { width: canvas.width, height: canvas.height, std: Math.sqrt(sum2 / n - (sum / n) ** 2), hash };
      });
    }

    const current = () => page.locator('#current').textContent();

    it('lists the results and shows the figure of the first', async () => {
      await page.waitForFunction((n) => document.querySelectorAll('#files li').length === n, FILES.length);
      assert.deepEqual(await page.locator('#files li').allTextContents(), FILES);
      await waitForFigure({ file: FILES[0] });
      assert.equal(await current(), FILES[0]);
      const px = await figurePixels();
      assert.ok(px.width > 524 && px.height > 400, `figure ${px.width} x ${px.height}`);
      assert.ok(px.std > 10, `the figure is not blank (std ${px.std})`);
      assert.equal(await page.locator('#files li.current').textContent(), FILES[0]);
      assert.ok(await page.locator('#prev').isDisabled());
    });

    it('steps through the pairs with the buttons, the arrow keys and the list', async () => {
      const before = await figurePixels();
      await page.click('#next');
      await waitForFigure({ file: FILES[1] });
      assert.equal(await current(), FILES[1]);
      assert.notEqual((await figurePixels()).hash, before.hash, 'another figure');
      await page.keyboard.press('ArrowRight');
      await waitForFigure({ file: FILES[2] });
      assert.equal(await current(), FILES[2]);
      assert.ok(await page.locator('#next').isDisabled());
      await page.keyboard.press('ArrowRight'); // at the end: stays
      await page.keyboard.press('ArrowLeft');
      await waitForFigure({ file: FILES[1] });
      await page.click(`#files li:nth-child(1) button`);
      await waitForFigure({ file: FILES[0] });
      await page.click('#prev', { force: true }); // disabled: nothing happens
      await page.click('#next');
      await waitForFigure({ file: FILES[1] });
      assert.equal(await page.locator('#files li.current').textContent(), FILES[1]);
    });

    it('shows the values of a clicked vector, as stored in the file', async () => {
      const stored = await readPivFile(join(outdir, FILES[1]));
      const pass: PassResult = stored.passes[stored.passes.length - 1];
      const frame = JSON.parse(await page.locator('#figure').getAttribute('data-frame') ?? '{}') as FramePx;
      const natural = await page.evaluate(() => (document.getElementById('figure') as HTMLImageElement).naturalWidth);
      // The result is fetched beside the figure: wait for its status line.
      await page.waitForFunction((f) => (document.getElementById('status')?.textContent ?? '').startsWith(f), FILES[1]);
      const errorOf = new Map(Array.from(pass.errors.keys, (k, j) => [k, j]));
      const valid = Array.from(pass.xs.keys()).find((i) => i > pass.xs.length / 2 && !errorOf.has(i) && Number.isFinite(pass.deltaxs[i]));
      assert.ok(valid !== undefined);
      for (const i of [valid, pass.errors.keys[0]]) {
        const box = await page.locator('#figure').boundingBox();
        assert.ok(box !== null);
        const k = box.width / natural;
        // Centre of the figure pixel where the vector starts (the renderer's figX, figY).
        const X = frame.left + (pass.xs[i] + 0.5) * frame.zx;
        const Y = frame.top + (pass.ys[i] + 0.5) * frame.zy;
        await page.mouse.click(box.x + X * k, box.y + Y * k);
        await page.waitForFunction((index) => document.getElementById('d-index')?.textContent === String(index), i);
        const text = async (id: string) => (await page.locator(`#d-${id}`).textContent()) ?? '';
        sameF32(await text('x'), pass.xs[i], `x of vector ${i}`);
        sameF32(await text('y'), pass.ys[i], `y of vector ${i}`);
        sameF32(await text('dx'), pass.deltaxs[i], `dx of vector ${i}`);
        sameF32(await text('dy'), pass.deltays[i], `dy of vector ${i}`);
        sameF32(await text('correl'), pass.correls_max[i], `correlation of vector ${i}`);
        const nx = pass.shape_grid[1];
        assert.equal(await text('grid'), `${i % nx}, ${Math.floor(i / nx)}`);
        const j = errorOf.get(i);
        assert.equal(await text('code'), j === undefined ? 'none' : String(pass.errors.codes[j]));
        assert.equal(await text('message'), j === undefined ? '' : pass.errors.values[j]);
        assert.ok(await page.locator('#marker').isVisible());
      }
      assert.ok(pass.errors.values[0].length > 0, 'an error message was checked');
    });

    it('toggles the background, the image and the vectors', async () => {
      const base = await figurePixels();
      const expectFigure = async (settings: Record<string, string>) => {
        await waitForFigure({ file: FILES[1], ...settings });
        return figurePixels();
      };
      await page.selectOption('#background', 'vorticity');
      const vorticity = await expectFigure({ background: 'vorticity' });
      assert.ok(vorticity.width > base.width, 'colour bar');
      assert.notEqual(vorticity.hash, base.hash);
      await page.selectOption('#background', 'magnitude');
      const magnitude = await expectFigure({ background: 'magnitude' });
      assert.notEqual(magnitude.hash, vorticity.hash);
      await page.selectOption('#background', 'none');
      assert.equal((await expectFigure({ background: 'none' })).hash, base.hash, 'the same figure again');

      await page.selectOption('#image', 'b');
      assert.notEqual((await expectFigure({ image: 'b' })).hash, base.hash);
      // Keys act when no form field has the focus.
      await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
      await page.keyboard.press('a');
      assert.equal((await expectFigure({ image: 'a' })).hash, base.hash);

      await page.uncheck('#vectors');
      assert.notEqual((await expectFigure({ vectors: '0' })).hash, base.hash);
      await page.check('#vectors');
      assert.equal((await expectFigure({ vectors: '1' })).hash, base.hash);
    });

    it('shows the progress of the job', async () => {
      await page.waitForFunction(() => document.getElementById('job-state')?.textContent === 'finished');
      assert.match((await page.locator('#job-done').textContent()) ?? '', /^3 \/ 3 \(100\.0 %\)/);
      assert.equal(await page.locator('#job-failed').textContent(), '0');
    });

    it('renders to a screenshot with content', async () => {
      const png = await page.screenshot();
      const meta = await sharp(png).metadata();
      assert.equal(meta.format, 'png');
      assert.deepEqual([meta.width, meta.height], [VIEWPORT.width, VIEWPORT.height]);
      const stats = await sharp(png).stats();
      const [r, g, b] = stats.channels;
      assert.ok(Math.min(r.stdev, g.stdev, b.stdev) > 15, `varied pixels (stdev ${r.stdev}, ${g.stdev}, ${b.stdev})`);
      assert.ok(stats.entropy > 2, `entropy ${stats.entropy}`);
      // Page chrome (white), figure (grey image, coloured arrows) and the header (dark).
      assert.ok(r.min < 60 && r.max > 240);
      if (process.env.VIEWER_SCREENSHOT) await sharp(png).toFile(process.env.VIEWER_SCREENSHOT);
    });

    it('ran without script errors', () => {
      assert.deepEqual(pageErrors, []);
    });
  });
});
