/**
 * `fluidimage monitor OUTDIR`: progress of the latest job writing OUTDIR, from its job
 * directory alone (works for a job running elsewhere, e.g. on cluster nodes): items
 * done and failed, rate, ETA, failures; or the summary of a finished job.
 */
import { join } from 'node:path';
import { jobState } from '../report/job_state.js';

export async function runMonitor(outputDir: string, json: boolean): Promise<number> {
  const s = await jobState(outputDir);
  if (json) {
    process.stdout.write(JSON.stringify(s, null, 2) + '\n');
    return 0;
  }
  const pct = s.toCompute ? ((100 * s.done) / s.toCompute).toFixed(1) : '100.0';
  const lines = [
    `${s.outputDir}: job ${s.state} (${s.executor}, ${s.ranks} rank(s)), started ${s.start}${s.end ? `, ended ${s.end}` : ''}`,
    `  last sign of life: ${s.lastSignOfLife ?? 'none'}`,
    `  items: ${s.done}/${s.toCompute} done (${pct}%), ${s.failed.length} failed; ${s.skipped} were already done; ${s.total} in the series`,
    `  rate: ${s.ratePerSecond.toFixed(2)} items/s${s.etaSeconds !== null ? `, ETA ${Math.round(s.etaSeconds)} s` : ''}`,
    `  result files in the directory: ${s.resultFiles}`,
    `  job directory: ${s.jobDir}`,
  ];
  if (s.incomplete) lines.push(`  the job directory lacks ${s.incomplete.join(', ')} (a job killed or refused at its start)`);
  if (s.state === 'dead') lines.push(`  the job is dead: ${s.reason}; rerun the same command to complete the series`);
  if (s.state === 'stopped') lines.push(`  the job was ${s.reason ?? 'stopped'}: rerun the same command to complete the series`);
  for (const f of s.failed.slice(0, 20)) lines.push(`  failed: ${f.name}: ${f.error}`);
  if (s.failed.length > 20) lines.push(`  ... and ${s.failed.length - 20} more in ${join(s.jobDir, 'failed')}`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
