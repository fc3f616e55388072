/** Parameters of the image-to-image topology (`fluidimage im2im`). */
import { custom, group, invalid, modulePath, str, strOrNull } from './schema.js';
import { pivSchema } from './piv.js';

const series = pivSchema.children.series;

export const im2imSchema = group('Parameters of the image-to-image topology (a user function applied to every image)', {
  im2im: modulePath('JavaScript module (path, or path#export): a function (image, name) => image or a class with calcul(image, name)'),
  args_init: custom<number[] | string[]>([], 'Arguments given to the class constructor of im2im', (v, k) => {
    if (Array.isArray(v) && (v.every((x) => typeof x === 'number') || v.every((x) => typeof x === 'string'))) return v as number[] | string[];
    throw invalid(k, 'a list of numbers or a list of strings', v);
  }),
  series: group(series.doc, {
    ...series.children,
    str_subset: str('all1by1', 'Which images: "all1by1" (each image), or an expression of i'),
  }),
  saving: group('Where and how results are written', {
    path: strOrNull(null, 'Output directory (null: "<input dir>.<postfix>")'),
    how: str('complete', 'complete: only missing results; recompute: all; new_dir: a fresh directory', ['complete', 'recompute', 'new_dir'] as const),
    postfix: str('im2im', 'Suffix of the default output directory'),
  }),
});
