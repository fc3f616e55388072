/**
 * Parameters of the time average of PIV results (`fluidimage mean DIR.piv`): which result
 * files, and where the average goes.
 */
import { group, str, strOrNull } from './schema.js';

export const meanSchema = group('Parameters of the time average of PIV results (mean field, RMS fluctuations, uncertainty of the mean)', {
  series: group('Which results', {
    path: strOrNull(null, 'Directory or glob of PIV result files, e.g. "DIR.piv" or "DIR.piv/piv_0*.h5" (the command-line PATH sets it)'),
  }),
  saving: group('Where and how the average is written', {
    path: strOrNull(null, 'Output file (null: "mean_piv.h5" in the directory of the results)'),
    how: str('recompute', 'recompute: average again (the series may have grown); complete: nothing to do when the output file exists', ['recompute', 'complete'] as const),
  }),
});
