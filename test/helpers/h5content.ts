/**
 * The whole content of an HDF5 file as a flat record, for "same file as that one" checks
 * between executors: every group, dataset value and attribute value by path
 * (`/group/dataset`, `/group@attr`). Strings equal to `replace[0]` (e.g. the output
 * directory, which results record) read as `replace[1]`, so that two runs into different
 * directories compare equal when everything else is.
 */
import { attrNames, childNames, getDataset, getGroup, withH5File, type H5Group, type H5Object } from '../../io/h5.js';

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
