/**
 * Parameters of the mean image (`fluidimage mean-image`), with Fluidimage's names for
 * the series and the saving (TopologyMeanImage writes into `<input dir>.mean_image`).
 */
import { bool, custom, group, invalid, str, strOrNull } from './schema.js';
import { seriesGroup } from './series.js';

const IMAGE_STATISTICS = ['mean', 'min', 'max', 'std'] as const;
export type ImageStatistic = (typeof IMAGE_STATISTICS)[number];

function statisticList(v: unknown, key: string): string[] {
  const known = IMAGE_STATISTICS as readonly string[];
  if (Array.isArray(v) && v.every((s) => typeof s === 'string' && known.includes(s))) return [...new Set(v as string[])];
  throw invalid(key, `a list among ${IMAGE_STATISTICS.join(', ')}`, v);
}

export const meanImageSchema = group('Parameters of the mean image', {
  series: seriesGroup('Which images: every image selected by the series (an image in several items counts once)', 'all1by1',
    'Images of one item: "all1by1" (every image), "i,0" (frames a only of a double-frame series), ...'),
  statistics: group('Statistics computed besides the mean (float64 sums, one pass)', {
    min: bool(true, 'Minimum of each pixel'),
    max: bool(true, 'Maximum of each pixel'),
    std: bool(true, 'Standard deviation of each pixel (population: divided by the number of images)'),
  }),
  saving: group('Where and how results are written', {
    path: strOrNull(null, 'Output directory (null: "<input dir>.<postfix>")'),
    how: str('complete', 'complete: nothing to do when the results exist (and no image failed); recompute: compute again; new_dir: a fresh directory', ['complete', 'recompute', 'new_dir'] as const),
    postfix: str('mean_image', 'Suffix of the default output directory'),
    images: custom<string[]>(['mean'], 'Statistics also written as images (<stat>.<ext of the inputs>, input bit depth, rounded and clipped); all are in <dir>/mean.h5', statisticList),
  }),
});
