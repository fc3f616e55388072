/**
 * The kinds of result files the program writes (root attribute `class_name`), in words,
 * and a description of any of them for `fluidimage info`: what wrote it, its attributes,
 * and each dataset with its shape and the statistics of its finite values.
 */
import { attrNames, childNames, getDataset, getGroup, isNumericDataset, readFloat32, readParamAttr, readStringAttr, readStrings, withH5File, type H5Group } from './h5.js';
import { CLASS_NAME as PIV_CLASS_NAME } from './pivfile_layout.js';
import { stats, type Stats } from './stats.js';

/** What each class of file is, and the command that made it. */
const RESULT_KINDS: Record<string, string> = {
  [PIV_CLASS_NAME]: 'PIV result (fluidimage piv or bos)',
  TimeAveragePIV: 'time average of PIV fields (fluidimage mean)',
  SurfaceTrackingResult: 'surface-tracking result (fluidimage surftrack)',
  MeanImage: 'mean image of a series (fluidimage mean-image)',
};

/** h5wasm's dtype codes in words. */
const DTYPES: Record<string, string> = { '<f': 'float32', '<d': 'float64', '<b': 'int8', '<B': 'uint8', '<h': 'int16', '<H': 'uint16', '<i': 'int32', '<I': 'uint32', '<q': 'int64', '<Q': 'uint64' };

/** The sentence for a file that is not a PIV result: what it is and which command fits. */
export function notPivSentence(path: string, className: string | undefined): string {
  const kind = className === undefined ? undefined : RESULT_KINDS[className];
  const what = kind ? `a ${kind}` : className ? `a file of class ${className}` : 'not a result of this program (no class_name)';
  return `${path} is ${what}, not a PIV result: view and export take PIV and BOS results (one pair per file); ` +
    `\`fluidimage info ${path}\` describes any result file`;
}

export interface DatasetSummary {
  path: string;
  shape: number[];
  dtype: string;
  stats?: Stats;
  /** String datasets: the first few values. */
  values?: string[];
}

export interface FileSummary {
  path: string;
  class_name?: string;
  kind?: string;
  attributes: Record<string, unknown>;
  datasets: DatasetSummary[];
}

/** Any HDF5 file the program writes: attributes of the root, every dataset (not /params). */
export async function describeResultFile(path: string): Promise<FileSummary> {
  return withH5File(path, 'r', (file) => {
    const className = readStringAttr(file, 'class_name');
    const attributes: Record<string, unknown> = {};
    for (const name of attrNames(file)) attributes[name] = readParamAttr(file, name);
    const datasets: DatasetSummary[] = [];
    const walk = (group: H5Group, prefix: string) => {
      const { groups, datasets: names } = childNames(group);
      for (const name of names.sort()) {
        const d = getDataset(group, name)!;
        const entry: DatasetSummary = { path: prefix + name, shape: [...(d.shape ?? [])].map(Number), dtype: d.metadata.type === 3 ? 'string' : DTYPES[String(d.dtype)] ?? String(d.dtype) };
        if (isNumericDataset(group, name)) entry.stats = stats(readFloat32(group, name) ?? []);
        else entry.values = (readStrings(group, name) ?? []).slice(0, 5);
        datasets.push(entry);
      }
      for (const name of groups.sort()) if (!(prefix === '' && name === 'params')) walk(getGroup(group, name)!, `${prefix}${name}/`);
    };
    walk(file, '');
    return { path, class_name: className, kind: className ? RESULT_KINDS[className] : undefined, attributes, datasets };
  });
}

/** The description as lines of text. */
export function formatFileSummary(s: FileSummary): string[] {
  const fmt = (st: Stats) => (st.count === 0 ? 'no finite value' : `mean ${st.mean!.toPrecision(6)}, min ${st.min!.toPrecision(6)}, max ${st.max!.toPrecision(6)}`);
  const lines = [s.path, `  ${s.kind ?? `class ${s.class_name ?? 'unknown'}`}`];
  for (const [k, v] of Object.entries(s.attributes)) if (k !== 'class_name') lines.push(`  ${k}: ${JSON.stringify(v)}`);
  for (const d of s.datasets) {
    lines.push(`  ${d.path}: ${d.shape.join(' x ') || 'scalar'} ${d.dtype}${d.stats ? `; ${fmt(d.stats)}` : d.values ? `; ${d.values.map((v) => JSON.stringify(v)).join(', ')}${d.shape.reduce((a, b) => a * b, 1) > 5 ? ', ...' : ''}` : ''}`);
  }
  return lines;
}
