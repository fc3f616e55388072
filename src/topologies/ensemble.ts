/**
 * Ensemble correlation (`fluidimage ensemble PATH`): the mean field of a series from the
 * correlation planes of all its pairs summed, pass by pass (sparse seeding, micro-PIV,
 * boundary layers: peaks too weak in one pair stand out of the sum). Each pass is one sweep
 * over the series: every pair is deformed by the ensemble field of the previous pass and
 * its windows' planes are added to this process's sums (one set per lane, whatever the
 * number of pairs); the engine then adds the sums of every lane and rank, and the peaks,
 * validation and smoothing of the summed planes give the field the next pass deforms
 * with. One result, `ensemble.h5`, in the PIV layout, written at the end.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeAtomic } from '../io/atomic.js';
import { writePivFile } from '../io/pivfile.js';
import { createGroup, withH5File, writeInt64Attr, writeStrings } from '../io/h5.js';
import { ensembleSchema } from '../params/ensemble.js';
import { typedTree } from '../params/schema.js';
import { PROGRAM, VERSION } from '../version.js';
import { WorkPIV, type EnsemblePlanes, type Field, type PairImages } from '../works/piv/work.js';
import type { PassResult } from '../results/piv_result.js';
import type { ParamTree } from '../params/tree.js';
import type { Job } from '../executors/types.js';
import { seriesOutputDir, seriesParams } from './output.js';
import { chainSteps, checkImageGeometry, checkMaskFolder, loadMask, pairFilter, pairItems, pairMasker, pairName, readPair, recyclePair, type PivItem } from './piv.js';
import type { PartialArray, ReducePlan, ReduceTopologySpec, Reduction } from './spec.js';

const ENSEMBLE_FILE = 'ensemble.h5';

/** What every rank needs besides the parameters: the images' size (the planes' layout follows). */
interface Shared {
  height: number;
  width: number;
}

/** The field after a pass, as sent to the ranks (JSON numbers keep float32 values exactly). */
interface FieldMessage {
  dx: number[];
  dy: number[];
}

type PairSteps = ((pair: PairImages) => Promise<PairImages>) | undefined;


class EnsembleReduction implements Reduction<PivItem, PairImages> {
  readonly rounds: number;
  /** Plane sums of this process's lanes for the current sweep: all of them, and those free now. */
  private sets: EnsemblePlanes[] = [];
  private free: EnsemblePlanes[] = [];
  /** The ensemble field of the last pass combined (predictor of the next sweep). */
  private field?: Field;
  /** Rank 0: the passes computed from the summed planes, and the field of the last one. */
  readonly passes: PassResult[] = [];
  finalField?: Field;
  /** Pairs added in the last sweep by this process (rank 0: with the others' counted by the engine). */
  readonly used: PivItem[] = [];

  constructor(private readonly work: WorkPIV, private readonly shape: Shared, private readonly steps: PairSteps) {
    this.rounds = work.passCount;
  }

  job(round: number, items: PivItem[]): Job<PivItem, PairImages, void> {
    const { height, width } = this.shape;
    const layout = this.work.planeLayout(round, height, width);
    return {
      items,
      name: pairName,
      read: this.steps ? async (item) => this.steps!(await readPair(item)) : readPair,
      compute: async (pair, item) => {
        if (pair.height !== height || pair.width !== width) {
          throw new Error(`images of ${pair.width}x${pair.height} pixels (${pair.names[0]}) but the series' are ${width}x${height}: an ensemble needs one size`);
        }
        let planes = this.free.pop();
        if (!planes) {
          planes = { sum: new Float32Array(layout.windows * layout.planeSize), count: new Float32Array(layout.windows) };
          this.sets.push(planes);
        }
        try {
          await this.work.accumulatePlanes(pair, round, this.field, planes);
          if (round === this.rounds - 1) this.used.push(item);
        } finally {
          this.free.push(planes);
        }
      },
      recycle: recyclePair,
      write: async () => {},
    };
  }

  partials(round: number): Record<string, PartialArray> {
    const { height, width } = this.shape;
    const layout = this.work.planeLayout(round, height, width);
    // A process that added no pair contributes zeros (every rank takes part in the reduction).
    const [first, ...others] = this.sets.length > 0 ? this.sets
      : [{ sum: new Float32Array(layout.windows * layout.planeSize), count: new Float32Array(layout.windows) }];
    for (const p of others) {
      for (let i = 0; i < p.sum.length; i++) first!.sum[i]! += p.sum[i]!;
      for (let i = 0; i < p.count.length; i++) first!.count[i]! += p.count[i]!;
    }
    this.sets = [];
    this.free = [];
    return { count: { data: first!.count, op: 'sum' }, planes: { data: first!.sum, op: 'sum' } };
  }

  async combine(round: number, totals: Record<string, Float32Array | Float64Array>): Promise<FieldMessage> {
    const { height, width } = this.shape;
    const planes = { sum: totals.planes as Float32Array, count: totals.count as Float32Array };
    const { result, field } = await this.work.passFromPlanes(round, height, width, this.field, planes);
    this.passes.push(result);
    this.finalField = field;
    return { dx: Array.from(field.dx), dy: Array.from(field.dy) };
  }

  receive(round: number, message: unknown): void {
    const m = message as FieldMessage;
    const { height, width } = this.shape;
    this.field = this.work.fieldOf(round, height, width, Float32Array.from(m.dx), Float32Array.from(m.dy));
  }
}

/** The size of the first pair that reads (after preproc.im2im, which may change it). */
async function seriesShape(items: PivItem[], steps: PairSteps): Promise<Shared> {
  const errors: string[] = [];
  for (const item of items) {
    if (item.missing.length > 0) continue;
    try {
      const pair = steps ? await steps(await readPair(item)) : await readPair(item);
      recyclePair(pair);
      return { height: pair.height, width: pair.width };
    } catch (e) {
      errors.push(`${pairName(item)}: ${(e as Error).message}`);
      if (errors.length >= 3) break;
    }
  }
  throw Object.assign(new Error(`No readable pair in the series${errors.length > 0 ? ` (${errors.join('; ')})` : ''}: nothing to correlate`), { code: 'ERR_INPUT' });
}

async function planEnsemble(params: ParamTree): Promise<ReducePlan<PivItem, PairImages>> {
  const p = typedTree(ensembleSchema, params);
  const series = seriesParams(p);
  const work = new WorkPIV(params, 1, await loadMask(params));
  const items = await pairItems(series, 'Ensemble correlation');
  if (items.length < 2) {
    throw Object.assign(new Error(`Ensemble correlation sums the correlations of many pairs, but the series ${series.path} gives ` +
      `${items.length} pair(s): use \`fluidimage piv\` for one pair, or select more (series.str_subset, series.ind_start/ind_stop)`), { code: 'ERR_INPUT' });
  }
  const filter = await pairFilter(params);
  if (!filter) {
    await checkImageGeometry(work, items);
    await checkMaskFolder(params, items, 0);
  }
  const steps = chainSteps(filter, await pairMasker(params, 0));
  const shape = await seriesShape(items, steps);
  if (filter) work.checkGeometry(shape.height, shape.width, 'after preproc.im2im');
  const outputDir = await seriesOutputDir(p);
  const file = join(outputDir, ENSEMBLE_FILE);
  const reduction = new EnsembleReduction(work, shape, steps);
  return {
    outputDir,
    items,
    upToDate: p.saving.how === 'complete' && existsSync(file),
    shared: shape,
    reduction,
    write: async (failed) => {
      const used = items.filter((it) => !failed.includes(pairName(it)));
      const first = used[0]!;
      const result = work.ensembleResult(reduction.passes, reduction.finalField!, shape.height, shape.width,
        [first.names[0], first.names[1]], [first.paths[0], first.paths[1]]);
      await writeAtomic(file, async (tmp) => {
        await writePivFile(tmp, result, { program: PROGRAM, version: VERSION });
        await withH5File(tmp, 'a', (f) => {
          const g = createGroup(f, 'ensemble');
          writeInt64Attr(g, 'nb_pairs', used.length);
          writeInt64Attr(g, 'nb_failed', failed.length);
          writeStrings(g, 'names_a', used.map((it) => it.names[0]));
          writeStrings(g, 'names_b', used.map((it) => it.names[1]));
          if (failed.length > 0) writeStrings(g, 'failed', failed);
        });
      });
      return `ensemble of ${used.length} pair(s), ${reduction.passes.length} pass(es): ${basename(outputDir)}/${ENSEMBLE_FILE}`;
    },
  };
}

export const ensembleTopology: ReduceTopologySpec<PivItem, PairImages> = {
  kind: 'reduce',
  name: 'ensemble',
  itemLabel: 'pair',
  schema: ensembleSchema,
  plan: (params) => planEnsemble(params),
  workerReduction: async (params, shared) => {
    const steps = chainSteps(await pairFilter(params), await pairMasker(params, 0));
    return new EnsembleReduction(new WorkPIV(params, 1, await loadMask(params)), shared as Shared, steps);
  },
};
