/**
 * Security of the viewer and of user modules (issue 18): the Host check against DNS
 * rebinding, figures that draw only the images of the series, idle connections cut off,
 * user modules announced and resolved against their params file; and what was found safe
 * and must stay so (malformed HTTP, many requests at once, corrupt results, names that
 * are HTML).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { readPivFile, writePivFile } from '../io/pivfile.js';
import { applySets, loadParamsFile } from '../params/load.js';
import { im2imSchema } from '../params/im2im.js';
import { pivSchema } from '../params/piv.js';
import { hostAllowed } from '../viewer/host.js';
import { startViewer, type Viewer } from '../viewer/server.js';
import type { ParamTree } from '../params/tree.js';
import { describeRun, listJobDirs, makeTempDir, removeDir, RUN_JS, runCli } from './helpers/cli.js';
import { CHROMIUM, CHROMIUM_ARGS, httpGet, json, printedUrl } from './helpers/viewer.js';

const RESULT = 'piv_0001ab.h5';

/** Seconds until the server closes a raw connection that sends `data` (and the first bytes it answers). */
function closedAfter(port: number, data: string): Promise<{ seconds: number; answer: string }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    let answer = '';
    const socket = connect(port, '127.0.0.1', () => {
      if (data !== '') socket.write(data);
    });
    socket.on('data', (b: Buffer) => (answer += b.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ seconds: (performance.now() - t0) / 1000, answer }));
  });
}

describe('security of the viewer and of user modules', function () {
  this.timeout(120_000);
  let tmp: string | undefined;
  let series = '';
  let outdir = '';
  let secret = '';
  let viewer: Viewer | undefined;
  const url = (path: string): string => new URL(path, viewer?.url).href;

  before(async () => {
    tmp = await makeTempDir('security');
    series = join(tmp, 'series');
    outdir = join(tmp, 'out');
    for (const args of [['synth', 'uniform', '-o', series, '--pairs', '1', '--size', '128'],
      ['piv', series, '-o', outdir, '-q', '--set', 'piv0.shape_crop_im0=32']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, describeRun(args, r));
    }
    // An image of the user's, outside the series: no result file may make the viewer draw it.
    await mkdir(join(tmp, 'private'));
    secret = join(tmp, 'private', 'secret.png');
    await copyFile(join(series, 'im0001a.png'), secret);
    viewer = await startViewer(outdir, { port: 0 });
  });

  after(async () => {
    await viewer?.close();
    await removeDir(tmp);
  });

  describe('Host header (DNS rebinding)', () => {
    it('accepts localhost, dotted IPv4 loopback addresses, [::1] and the --host name, with or without a port', () => {
      for (const host of ['localhost', 'localhost:8765', 'LocalHost:8765', '127.0.0.1', '127.0.0.1:8765', '127.0.0.2',
        '127.255.255.254:80', '[::1]', '[::1]:8765']) {
        assert.equal(hostAllowed(host, '127.0.0.1'), true, host);
      }
      assert.equal(hostAllowed('lab-pc.example:8765', 'lab-pc.example'), true);
      assert.equal(hostAllowed('192.168.1.5:8765', '192.168.1.5'), true);
      assert.equal(hostAllowed('[fe80::1]:8765', 'fe80::1'), true);
    });

    it('refuses every other name: rebinding names that start with 127., short or malformed addresses', () => {
      for (const host of ['127.0.0.1.evil.example:8765', '127.0.0.1.evil.example', '127.evil.example', '127.evil.example:8765',
        'evil.example', 'localhost.evil.example', '127.1', '127.0.1', '127.0.0.256', '127.00.0.1', '0127.0.0.1', '128.0.0.1',
        '10.0.0.1', '::1', '[::1].evil.example', '[::2]', 'localhost:abc', 'localhost:', '', '127.0.0.1 ', '127.0.0.1:80:80']) {
        assert.equal(hostAllowed(host, '127.0.0.1'), false, JSON.stringify(host));
      }
      assert.equal(hostAllowed(undefined, '127.0.0.1'), false);
      assert.equal(hostAllowed('other.example', 'lab-pc.example'), false);
      assert.equal(hostAllowed('lab-pc.example.evil.example', 'lab-pc.example'), false);
    });

    it('a server on every interface (--host 0.0.0.0) also answers IP addresses and this machine\'s name, not other names', () => {
      for (const host of ['192.168.1.5:8765', '10.0.0.1', '[fe80::1]:8765', hostname(), '127.0.0.1']) {
        assert.equal(hostAllowed(host, '0.0.0.0'), true, host);
      }
      for (const host of ['evil.example', '127.0.0.1.evil.example:8765', '10.0.0.1.evil.example']) {
        assert.equal(hostAllowed(host, '0.0.0.0'), false, host);
      }
    });

    it('the viewer answers 403 to rebinding names and 200 to loopback names', async () => {
      const port = viewer?.port ?? 0;
      for (const host of [`127.0.0.1.evil.example:${port}`, '127.evil.example', `127.evil.example:${port}`, 'evil.example']) {
        const r = await httpGet(url('/api/files'), { headers: { Host: host } });
        assert.equal(r.status, 403, host);
        assert.doesNotMatch(r.body.toString(), /outdir|piv_/, `${host}: nothing of the directory`);
      }
      for (const host of [`localhost:${port}`, `127.0.0.2:${port}`, `[::1]:${port}`, '127.0.0.1']) {
        assert.equal((await httpGet(url('/api/files'), { headers: { Host: host } })).status, 200, host);
      }
    });

    it('the command refuses the names of the report (fluidimage viewer DIR, then curl -H "Host: 127.0.0.1.evil.example:PORT")', async () => {
      const child = spawn(process.execPath, [RUN_JS, 'viewer', outdir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        const base = await printedUrl(child);
        const port = new URL(base).port;
        for (const host of [`127.0.0.1.evil.example:${port}`, `127.evil.example:${port}`]) {
          assert.equal((await httpGet(new URL('api/files', base).href, { headers: { Host: host } })).status, 403, host);
        }
        assert.equal((await httpGet(new URL('api/files', base).href)).status, 200);
      } finally {
        child.kill('SIGTERM');
      }
    });

    it('listens on 127.0.0.1 only unless asked; on 0.0.0.0 it answers IP addresses, not DNS names', async () => {
      assert.match(viewer?.url ?? '', /^http:\/\/127\.0\.0\.1:\d+\/$/);
      // Not reachable at this machine's other addresses.
      const external = Object.values(networkInterfaces()).flat().find((a) => a?.family === 'IPv4' && !a.internal)?.address;
      if (external !== undefined) {
        await assert.rejects(httpGet(`http://${external}:${viewer?.port}/api/files`), { code: 'ECONNREFUSED' });
      }
      const open = await startViewer(outdir, { port: 0, host: '0.0.0.0' });
      try {
        const at = `http://127.0.0.1:${open.port}/api/files`;
        assert.equal((await httpGet(at, { headers: { Host: `192.0.2.7:${open.port}` } })).status, 200);
        assert.equal((await httpGet(at, { headers: { Host: `127.0.0.1.evil.example:${open.port}` } })).status, 403);
        assert.equal((await httpGet(at, { headers: { Host: 'evil.example' } })).status, 403);
        if (external !== undefined) assert.equal((await httpGet(`http://${external}:${open.port}/api/files`)).status, 200, 'reached by its address');
      } finally {
        await open.close();
      }
    });
  });

  describe('figures draw only the images of the series', () => {
    /** A copy of the genuine result that names other images. */
    async function crafted(name: string, paths: [string, string], names: [string, string]): Promise<void> {
      const result = await readPivFile(join(outdir, RESULT));
      await writePivFile(join(outdir, name), { ...result, paths, names }, { program: 'crafted', version: '0' });
    }

    async function figure(file: string, image: 'a' | 'b' | 'none' = 'a') {
      const r = await httpGet(url(`/api/figure?file=${encodeURIComponent(file)}&image=${image}`));
      assert.equal(r.status, 200, r.body.toString());
      assert.equal(r.headers['content-type'], 'image/png');
      return { found: r.headers['x-image-found'], note: r.headers['x-image-note'] };
    }

    it('draws the images of the input directory recorded by the job', async () => {
      assert.deepEqual(await figure(RESULT), { found: '1', note: undefined });
      assert.deepEqual(await figure(RESULT, 'b'), { found: '1', note: undefined });
    });

    it('does not draw an image a crafted result names elsewhere on disk, and says so', async () => {
      await crafted('crafted_abs.h5', [secret, secret], ['secret.png', 'secret.png']);
      await crafted('crafted_rel.h5', ['', ''], ['../private/secret.png', '../private/secret.png']);
      // A link inside the series leading out of it is judged by where it leads.
      const link = join(series, 'link.png');
      await symlink(secret, link);
      try {
        await crafted('crafted_link.h5', [link, link], ['link.png', 'link.png']);
        for (const file of ['crafted_abs.h5', 'crafted_rel.h5', 'crafted_link.h5']) {
          for (const image of ['a', 'b'] as const) {
            const got = await figure(file, image);
            assert.equal(got.found, '0', `${file} image ${image}: the private image is drawn`);
            assert.match(String(got.note), /outside the series of this result directory/, `${file} image ${image}`);
          }
          assert.deepEqual(await figure(file, 'none'), { found: '0', note: undefined });
        }
      } finally {
        await rm(link);
      }
    });

    it('trusts a job directory only when it wrote into this directory', async () => {
      // Copied from elsewhere (or forged): it says the series is the private folder.
      const forged = join(outdir, 'job_2000-01-01_00-00-00_1');
      await mkdir(forged);
      await writeFile(join(forged, 'info.json'), JSON.stringify({ outputDir: join(tmp ?? '', 'elsewhere') }));
      await writeFile(join(forged, 'params.yaml'), `series:\n  path: ${join(tmp ?? '', 'private')}\n`);
      await crafted('crafted_forged.h5', [secret, secret], ['secret.png', 'secret.png']);
      assert.equal((await figure('crafted_forged.h5')).found, '0');
    });

    it('draws an image beside the result (results moved with their images)', async () => {
      await copyFile(join(series, 'im0001a.png'), join(outdir, 'beside.png'));
      await crafted('crafted_beside.h5', ['/nonexistent/images/beside.png', '/nonexistent/images/beside.png'], ['beside.png', 'beside.png']);
      assert.deepEqual(await figure('crafted_beside.h5'), { found: '1', note: undefined });
    });
  });

  describe('connections and requests', () => {
    it('closes connections that send nothing or half a request, within seconds', async function () {
      this.timeout(60_000);
      const port = viewer?.port ?? 0;
      const [silent, half] = await Promise.all([closedAfter(port, ''), closedAfter(port, 'GET /api/files HTTP/1.1\r\nHost: 127.0.0.1\r\n')]);
      // 5 s, checked every second; slack for a loaded machine.
      for (const [what, c] of [['silent', silent], ['half a request', half]] as const) {
        assert.ok(c.seconds < 15, `${what}: closed after ${c.seconds.toFixed(1)} s`);
        assert.doesNotMatch(c.answer, / 200 /, what);
      }
    });

    it('keeps serving while sockets are half open, and answers 200 requests at once', async () => {
      const port = viewer?.port ?? 0;
      const sockets = Array.from({ length: 20 }, () => connect(port, '127.0.0.1', function (this: ReturnType<typeof connect>) {
        this.write('GET / HTTP/1.1\r\n');
      }).on('error', () => undefined));
      try {
        const replies = await Promise.all(Array.from({ length: 200 }, (_, i) =>
          httpGet(url(i % 2 === 0 ? '/api/files' : `/api/result?file=${RESULT}`))));
        assert.deepEqual([...new Set(replies.map((r) => r.status))], [200]);
      } finally {
        for (const s of sockets) s.destroy();
      }
    });

    it('answers malformed HTTP with 400 and goes on serving', async () => {
      const port = viewer?.port ?? 0;
      for (const garbage of ['\x00\x01\x02 nonsense\r\n\r\n', 'GET /api/files HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n',
        `GET /api/files HTTP/1.1\r\nHost: 127.0.0.1\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`, 'GET /api/files HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n']) {
        const { answer } = await closedAfter(port, garbage);
        assert.match(answer, /^HTTP\/1\.1 (400|431|505) /, JSON.stringify(garbage.slice(0, 30)));
      }
      assert.equal((await httpGet(url('/api/files'))).status, 200);
    });

    it('answers 422 for a corrupt result file, and the others still', async () => {
      await writeFile(join(outdir, 'corrupt.h5'), Buffer.concat([Buffer.from('\x89HDF\r\n\x1a\n'), Buffer.alloc(4096, 7)]));
      for (const endpoint of ['result', 'figure']) {
        const r = await httpGet(url(`/api/${endpoint}?file=corrupt.h5`));
        assert.equal(r.status, 422, endpoint);
        assert.match(json<{ error: string }>(r).error, /cannot read/);
      }
      assert.equal((await httpGet(url(`/api/result?file=${RESULT}`))).status, 200);
    });

    it('shows file and image names that are HTML as text (no script runs)', async function () {
      if (!existsSync(CHROMIUM)) this.skip();
      const html = '<img src=x onerror="window.pwned=1">';
      const result = await readPivFile(join(outdir, RESULT));
      await writePivFile(join(outdir, `0${html}.h5`), { ...result, names: [html, html] }, { program: 'crafted', version: '0' });
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      try {
        const page = await browser.newPage();
        await page.goto(`${viewer?.url}#${encodeURIComponent(`0${html}.h5`)}`);
        await page.waitForFunction((n) => (document.getElementById('status')?.textContent ?? '').startsWith(n), `0${html}.h5`);
        assert.match(await page.locator('#status').textContent() ?? '', /onerror/);
        assert.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined);
        assert.equal(await page.locator('#files img, #status img').count(), 0);
      } finally {
        await browser.close();
      }
    });
  });

  describe('user modules (preproc.im2im, im2im)', () => {
    let conf = '';
    let module = '';

    before(async () => {
      conf = join(tmp ?? '', 'conf');
      await mkdir(join(conf, 'mods'), { recursive: true });
      module = join(conf, 'mods', 'same.mjs');
      await writeFile(module, 'export default (im) => im;\nexport class Same { calcul(im) { return im; } }\n');
      await writeFile(join(conf, 'params.yaml'), 'preproc:\n  im2im: mods/same.mjs\npiv0:\n  shape_crop_im0: 32\n');
      await mkdir(join(tmp ?? '', 'elsewhere'), { recursive: true });
    });

    it('a module path in a params file is relative to the file\'s folder; in --set, to the current directory', async () => {
      const fromFile = await loadParamsFile(pivSchema, join(conf, 'params.yaml'));
      assert.equal((fromFile.preproc as ParamTree).im2im, module);
      await writeFile(join(conf, 'im2im.yaml'), 'im2im: ./mods/same.mjs#Same\n');
      assert.equal((await loadParamsFile(im2imSchema, join(conf, 'im2im.yaml'))).im2im, `${module}#Same`);
      const set = applySets(pivSchema, fromFile, ['preproc.im2im=mods/x.mjs#f']);
      assert.equal((set.preproc as ParamTree).im2im, join(process.cwd(), 'mods', 'x.mjs#f'));
      assert.equal((applySets(pivSchema, fromFile, ['preproc.im2im=null']).preproc as ParamTree).im2im, null);
      assert.equal((applySets(pivSchema, fromFile, [`preproc.im2im=${module}`]).preproc as ParamTree).im2im, module);
    });

    it('loading one prints its absolute path and its params file; the job\'s params.yaml reruns it from anywhere', async () => {
      const out = join(tmp ?? '', 'out-module');
      const args = ['piv', series, '-c', join(conf, 'params.yaml'), '-o', out, '-q'];
      const first = await runCli(args, { cwd: join(tmp ?? '', 'elsewhere') });
      assert.equal(first.code, 0, describeRun(args, first));
      const line = `fluidimage: loading user module ${module} (preproc.im2im, from params file ${join(conf, 'params.yaml')})`;
      assert.equal(first.stderr.split('\n').filter((l) => l.includes('loading user module')).join('\n'), line);
      const [job] = await listJobDirs(out);
      const saved = join(out, job, 'params.yaml');
      assert.ok((await readFile(saved, 'utf8')).includes(`  im2im: ${module}\n`), 'the saved params hold the absolute path');
      const rerun = await runCli(['piv', series, '-c', saved, '-q', '--how', 'recompute'], { cwd: tmp });
      assert.equal(rerun.code, 0, rerun.stderr);
      assert.ok(rerun.stderr.includes(`fluidimage: loading user module ${module} (preproc.im2im, from params file ${saved})\n`), rerun.stderr);
    });

    it('loading one from --set says so, for piv and for im2im', async () => {
      const piv = await runCli(['piv', series, '-o', join(tmp ?? '', 'out-set'), '-q', '--set', 'piv0.shape_crop_im0=32',
        '--set', 'preproc.im2im=mods/same.mjs'], { cwd: conf });
      assert.equal(piv.code, 0, piv.stderr);
      assert.ok(piv.stderr.includes(`fluidimage: loading user module ${module} (preproc.im2im, from --set)\n`), piv.stderr);
      const im2im = await runCli(['im2im', series, '-o', join(tmp ?? '', 'out-im2im'), '-q', '--set', 'im2im=mods/same.mjs#Same'], { cwd: conf });
      assert.equal(im2im.code, 0, im2im.stderr);
      assert.ok(im2im.stderr.includes(`fluidimage: loading user module ${module} (im2im, from --set)\n`), im2im.stderr);
    });
  });
});
