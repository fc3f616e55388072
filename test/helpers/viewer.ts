/** What the viewer tests share: HTTP requests, and how to start the headless browser. */
import type { ChildProcess } from 'node:child_process';
import { request, type IncomingHttpHeaders } from 'node:http';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** node:http rather than fetch: the Host header and the method can be anything. */
export function httpGet(url: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export const json = <T>(r: Reply): T => JSON.parse(r.body.toString('utf8')) as T;

/** The URL `fluidimage viewer` prints on stdout once it listens (rejects if it exits first). */
export function printedUrl(child: ChildProcess): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let stdout = '';
    child.stdout?.on('data', (b: Buffer) => {
      stdout += b.toString();
      const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(stdout);
      if (m) resolve(m[0]);
    });
    child.on('exit', (code) => reject(new Error(`viewer exited (${code}) before printing its URL: ${stdout}`)));
  });
}
