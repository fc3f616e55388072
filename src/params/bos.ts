/**
 * Parameters of the BOS topology (background-oriented schlieren): the PIV parameters
 * (same names, same meaning) between a fixed reference image and every image of a series.
 */
import { custom, group, invalid, str, type Group, type Node } from './schema.js';
import { pivSchema } from './piv.js';

function reference(v: unknown, key: string): number | string {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === 'string' && v.trim() !== '') return v;
  throw invalid(key, 'the index of the reference image in the series (an integer >= 0) or the path of an image', v);
}

/** A copy of a group with some leaves replaced (dotted keys relative to the group; same value types). */
function withLeaves<G extends Group>(g: G, replace: Record<string, Node>, prefix = ''): G {
  const children: Record<string, Node> = {};
  for (const [name, child] of Object.entries(g.children)) {
    const key = prefix ? `${prefix}.${name}` : name;
    children[name] = replace[key] ?? (child.kind === 'group' ? withLeaves(child, replace, key) : child);
  }
  return group(g.doc, children) as Group as G;
}

const base = withLeaves(pivSchema, {
  'series.str_subset': str('all1by1', 'Which images are compared with the reference: "all1by1" (each image), or an expression as for PIV ("i:i+1")'),
  'saving.postfix': str('bos', 'Suffix of the default output directory and prefix of result names'),
});

export const bosSchema = group('Parameters of the BOS topology (displacements between a reference image and each image)', {
  reference: custom<number | string>(0, 'The reference image: its index in the series (0: the first image) or a path', reference),
  ...base.children,
});
