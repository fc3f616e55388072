/**
 * Checks of the results of a job wherever it ran: the whole content of an HDF5 file as a
 * flat record, for "same file as that one" checks between executors: every group, dataset
 * value and attribute value by path (`/group/dataset`, `/group@attr`). Strings holding
 * `replace[0]` (e.g. the output directory, which results record) read with `replace[1]`
 * instead, so that two runs into different directories compare equal when all else does.
 * Also the result files of an output directory and the host of each rank of a job.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { attrNames, childNames, getDataset, getGroup, withH5File, type H5Group, type H5Object } from '../../io/h5.js';
import { listDir, runCli } from './cli.js';

type Value = unknown;

function plain(value: Value, replace?: readonly [string, string]): Value {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number | bigint>);
  if (Array.isArray(value)) return value.map((v) => plain(v, replace));
  if (typeof value === 'string' && replace !== undefined) return value.split(replace[0]).join(replace[1]);
  return value;
}

/** Everything in the file at `path` (see the module comment). */
export function h5Content(path: string, replace?: readonly [string, string]): Promise<Record<string, Value>> {
  return withH5File(path, 'r', (file) => {
    const out: Record<string, Value> = {};
    const attrs = (target: H5Object, at: string) => {
      for (const name of attrNames(target)) out[`${at}@${name}`] = plain(target.attrs[name]!.value, replace);
    };
    const walk = (group: H5Group, at: string) => {
      attrs(group, at || '/');
      const { groups, datasets } = childNames(group);
      for (const d of datasets) {
        const ds = getDataset(group, d)!;
        out[`${at}/${d}`] = plain(ds.value, replace);
        attrs(ds, `${at}/${d}`);
      }
      for (const g of groups) walk(getGroup(group, g)!, `${at}/${g}`);
    };
    walk(file, '');
    return out;
  });
}

/** The HDF5 results of an output directory (sorted names; [] when it does not exist). */
export async function results(dir: string): Promise<string[]> {
  return (await listDir(dir)).filter((f) => f.endsWith('.h5'));
}

/**
 * The reference: `fluidimage piv IMAGES ...args -o OUT` with the local executor; the result
 * names, checked to be `pairs` of them.
 */
export async function localPiv(images: string, out: string, args: readonly string[], pairs: number): Promise<string[]> {
  const r = await runCli(['piv', images, ...args, '-o', out, '-q']);
  assert.equal(r.code, 0, r.stderr);
  const names = await results(out);
  assert.equal(names.length, pairs, names.join(' '));
  return names;
}

/**
 * Asserts every file of `names` in `dir` has the content of the same file in `ref`, but for
 * the entries of `ignore` (e.g. '/params/saving@path' where one run named its output
 * directory and the other took the default).
 */
export async function assertSameFiles(dir: string, ref: string, names: readonly string[], ignore: readonly string[] = []): Promise<void> {
  const read = async (path: string, replace?: readonly [string, string]) => {
    const content = await h5Content(path, replace);
    for (const key of ignore) {
      assert.ok(key in content, `${path}: no ${key} to ignore`);
      delete content[key];
    }
    return content;
  };
  for (const name of names) {
    assert.deepEqual(await read(join(dir, name), [dir, ref]), await read(join(ref, name)), name);
  }
}

/** The host named by each rank's log in a job directory ("rank K on HOST (pid P) joined"), by rank. */
export async function rankHosts(jobDir: string): Promise<string[]> {
  const logs = (await readdir(jobDir)).filter((f) => /^log_rank\d{4}\.txt$/.test(f)).sort();
  return Promise.all(logs.map(async (log, k) => {
    const text = await readFile(join(jobDir, log), 'utf8');
    const m = new RegExp(`rank ${k} on (\\S+) \\(pid \\d+\\) joined`).exec(text);
    assert.ok(m, `${log} names no host:\n${text}`);
    return m[1];
  }));
}
