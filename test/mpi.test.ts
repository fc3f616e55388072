/**
 * MPI binding (native/mpi.cc) and communicator (src/mpi/): the scripts in
 * test/fixtures/mpi run under a real `mpirun` on 1, 2 and 3 ranks, and as plain `node`
 * (singleton); the launcher checks run with faked environments; the addon is also built
 * without MPI (build/nompi) to check that path. The mocha process itself never
 * initialises MPI. Skipped, with the reason, without mpirun or without MPI in the addon.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { envLaunch, envRankCount } from '../mpi/launcher.js';
import { native } from '../native.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/test
const repo = join(here, '..', '..');
const fixture = (name: string) => join(here, 'fixtures', 'mpi', `${name}.js`);

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

// Launcher variables of an enclosing job (tests run inside sbatch/srun/mpirun) would
// make the children believe they are ranks of it.
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(OMPI_COMM_WORLD_|OMPI_UNIVERSE_|PMI_|PMIX_|SLURM_|MV2_)/.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

/** Runs a command in its own process group, killed as a whole after `timeoutMs`. */
function run(cmd: string, args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Run> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: repo, env: cleanEnv(opts.env), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0, timedOut });
    });
  });
}

function mpirun(n: number, script: string, args: string[] = [], timeoutMs = 30_000): Promise<Run> {
  const flags = ['--oversubscribe', '-n', String(n)];
  if (process.getuid?.() === 0) flags.unshift('--allow-run-as-root');
  return run('mpirun', [...flags, process.execPath, fixture(script), ...args], { timeoutMs });
}

function node(script: string, args: string[] = [], env: Record<string, string> = {}): Promise<Run> {
  return run(process.execPath, [fixture(script), ...args], { env });
}

function explain(r: Run): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}${r.timedOut ? ', TIMED OUT' : ''} after ${r.ms.toFixed(0)} ms\n` +
    `--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

function assertPass(r: Run, size: number, checks: string[]): void {
  assert.equal(r.code, 0, explain(r));
  const line = r.stdout.split('\n').find((l) => l.startsWith('PASS '));
  assert.ok(line, explain(r));
  assert.equal(line.split(' ')[1], String(size), line);
  for (const c of checks) assert.ok(line.includes(c), `${c} missing in ${line}`);
}

const BASIC = ['bcast', 'bcastObject', 'gatherv', 'gather', 'gatherObject', 'allreduce+reduce', 'send/recv', 'sendObject/recvObject', 'barrier'];
const ERRORS = ['validation', 'MPI_ERR_RANK', 'MPI_ERR_TRUNCATE', 'collective mismatch', 'objects in collectives', 'after finalize'];

describe('MPI: launcher environment (pure, no MPI)', () => {
  it('reads no launch from an empty environment', () => {
    assert.equal(envLaunch({}), undefined);
    assert.equal(envRankCount({}), 1);
  });

  it('reads Open MPI, PMI and MVAPICH variables, in that order', () => {
    assert.deepEqual(envLaunch({ OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_RANK: '2' }),
      { size: 4, rank: 2, variable: 'OMPI_COMM_WORLD_SIZE', launcher: 'Open MPI (mpirun/prterun)' });
    assert.equal(envLaunch({ PMI_SIZE: '8', PMI_RANK: '0' })?.variable, 'PMI_SIZE');
    assert.equal(envRankCount({ MV2_COMM_WORLD_SIZE: '3' }), 3);
    assert.equal(envRankCount({ PMI_SIZE: '8', OMPI_COMM_WORLD_SIZE: '2' }), 2);
  });

  it('counts Slurm tasks only inside a job step (srun), not in a batch script', () => {
    assert.equal(envRankCount({ SLURM_NTASKS: '8', SLURM_PROCID: '0', SLURM_JOB_ID: '12' }), 1);
    assert.deepEqual(envLaunch({ SLURM_STEP_ID: '0', SLURM_STEP_NUM_TASKS: '6', SLURM_NTASKS: '8', SLURM_PROCID: '5' }),
      { size: 6, rank: 5, variable: 'SLURM_STEP_NUM_TASKS', launcher: 'Slurm srun' });
    // mpirun inside an allocation: its own variables win.
    assert.equal(envLaunch({ SLURM_STEP_ID: '0', SLURM_STEP_NUM_TASKS: '1', OMPI_COMM_WORLD_SIZE: '4' })?.size, 4);
  });

  it('ignores values that are not positive integers', () => {
    assert.equal(envRankCount({ OMPI_COMM_WORLD_SIZE: '' }), 1);
    assert.equal(envRankCount({ OMPI_COMM_WORLD_SIZE: '0', PMI_SIZE: 'x2' }), 1);
    assert.equal(envRankCount({ SLURM_STEP_ID: 'batch', SLURM_STEP_NUM_TASKS: '4' }), 1);
  });

  it('importing the communicator initialises nothing', async () => {
    const comm = await import('../mpi/comm.js');
    assert.equal(comm.isInitialized(), false);
    assert.equal(native().mpiIsInitialized(), false);
  });
});

describe('MPI under mpirun (real processes)', function () {
  this.timeout(60_000);

  before(function () {
    let reason: string | undefined;
    if (spawnSync('mpirun', ['--version']).error) reason = 'mpirun is not on PATH (install openmpi-bin)';
    else if (!native().mpiAvailable()) reason = 'the addon was built without MPI (install libopenmpi-dev, then npm run build:native)';
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
  });

  for (const n of [1, 2, 3]) {
    it(`collectives and blocking point-to-point, ${n} rank(s); mpirun exits 0 after an explicit finalize`, async () => {
      assertPass(await mpirun(n, 'basic'), n, BASIC);
    });
  }

  it('singleton: plain node (no mpirun) is a world of 1', async () => {
    assertPass(await node('basic'), 1, BASIC);
  });

  for (const n of [1, 2, 3]) {
    it(`nonblocking exchange keeps the event loop ticking, ${n} rank(s); the exit hook finalises`, async () => {
      const r = await mpirun(n, 'nonblocking');
      assertPass(r, n, ['ticks=']);
      assert.doesNotMatch(r.stderr, /still pending/);
    });
  }

  for (const n of [1, 2, 3]) {
    it(`MPI errors become exceptions (ERR_MPI), arguments are checked, collectives never hang, ${n} rank(s)`, async () => {
      assertPass(n === 1 ? await node('errors') : await mpirun(n, 'errors'), n, ERRORS);
    });
  }

  const crashes: Array<[string, RegExp, number]> = [
    ['exception', /MPI rank 1 of 3 aborts the job \(code 1\): uncaught exception: Error: boom on purpose \(exception\)/, 1],
    ['rejection', /MPI rank 1 of 3 aborts the job \(code 1\): unhandled rejection: Error: rejected on purpose/, 1],
    ['bare', /MPI rank 1 of 3 aborts the job \(code 1\): uncaught exception: Error: boom on purpose \(bare\)/, 1],
    ['exit', /MPI rank 1 of 3 aborts the job \(code 3\): exiting with code 3 before finalising MPI/, 3],
  ];
  for (const [mode, message, code] of crashes) {
    it(`a rank that fails (${mode}) ends the whole job at once, naming the rank`, async () => {
      const r = await mpirun(3, 'crash', [mode], 20_000);
      assert.equal(r.timedOut, false, explain(r));
      assert.equal(r.code, code, explain(r));
      assert.match(r.stderr, message, explain(r));
      assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
    });
  }

  it('alone, an uncaught exception keeps Node\'s default report and exit code', async () => {
    const r = await node('crash', ['exception']);
    assert.equal(r.code, 1, explain(r));
    assert.match(r.stderr, /Error: boom on purpose \(exception\)/);
    assert.doesNotMatch(r.stderr, /aborts the job/);
  });

  it('checkLauncher: fine alone and under mpirun; reads the environment without initialising MPI', async () => {
    const alone = JSON.parse((await node('launcher')).stdout) as Record<string, unknown>;
    assert.deepEqual({ ...alone, version: undefined },
      { envRanks: 1, initialisedBefore: false, available: true, untouched: true, size: 1, check: { ok: true }, version: undefined });
    assert.match(String(alone.version), /\S/);
    const r = await mpirun(2, 'launcher');
    assert.equal(r.code, 0, explain(r));
    const two = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual([two.envRanks, two.untouched, two.size, two.check], [2, true, 2, { ok: true }]);
  });

  it('checkLauncher: ranks announced by the environment but a world of 1 is an error naming the causes', async () => {
    const ompi = JSON.parse((await node('launcher', [], { OMPI_COMM_WORLD_SIZE: '4' })).stdout) as {
      envRanks: number; size: number; check: { ok: boolean; code: string; message: string };
    };
    assert.equal(ompi.envRanks, 4);
    assert.equal(ompi.size, 1);
    assert.equal(ompi.check.code, 'ERR_MPI_LAUNCHER');
    assert.match(ompi.check.message, /started 4 ranks \(OMPI_COMM_WORLD_SIZE=4\) but MPI reports a world of 1 rank/);
    assert.match(ompi.check.message, /an MPI other than the one the addon is built with \(Open MPI/);
    assert.match(ompi.check.message, /--mpi=pmix/);
    const slurm = JSON.parse((await node('launcher', [], { SLURM_STEP_ID: '0', SLURM_STEP_NUM_TASKS: '2', SLURM_PROCID: '0' })).stdout) as {
      check: { code: string; message: string };
    };
    assert.equal(slurm.check.code, 'ERR_MPI_LAUNCHER');
    assert.match(slurm.check.message, /Slurm srun started 2 ranks .*srun --mpi=pmix/);
  });
});

describe('MPI: addon built without MPI (cmake -DFLUIDIMAGE_MPI=OFF into build/nompi)', function () {
  this.timeout(120_000);
  const addon = join(repo, 'build', 'nompi', 'Release', 'fluidimage_native.node');

  before(async function () {
    if (spawnSync('cmake', ['--version']).error) {
      console.log('      skipped: cmake is not on PATH');
      this.skip();
    }
    // Incremental after the first time (about 0.5 s; a clean build takes about 5 s).
    const r = await run(process.execPath, [join(repo, 'node_modules', 'cmake-js', 'bin', 'cmake-js'), 'compile',
      '--out', join('build', 'nompi'), '--CDFLUIDIMAGE_MPI=OFF'], { timeoutMs: 110_000 });
    assert.equal(r.code, 0, explain(r));
  });

  it('exports the same functions, which throw ERR_MPI_UNAVAILABLE saying how to rebuild', async () => {
    const probe = `
      const a = require(${JSON.stringify(addon)});
      const out = { available: a.mpiAvailable(), initialized: a.mpiIsInitialized(), finalized: a.mpiIsFinalized(),
        finalize: a.mpiFinalize(), errors: {} };
      for (const name of ['mpiInit', 'mpiLibraryVersion', 'mpiBarrier', 'mpiSend', 'mpiTest', 'mpiAbort']) {
        try { a[name](); out.errors[name] = 'no error'; } catch (e) { out.errors[name] = e.code + ': ' + e.message; }
      }
      out.functions = Object.keys(a).filter((k) => k.startsWith('mpi') && typeof a[k] === 'function').sort();
      console.log(JSON.stringify(out));`;
    const r = await run(process.execPath, ['-e', probe]);
    assert.equal(r.code, 0, explain(r));
    const out = JSON.parse(r.stdout) as { available: boolean; initialized: boolean; finalized: boolean; finalize: boolean;
      errors: Record<string, string>; functions: string[] };
    assert.deepEqual([out.available, out.initialized, out.finalized, out.finalize], [false, false, false, false]);
    const withMpi = Object.keys(native()).filter((k) => k.startsWith('mpi')).sort();
    assert.deepEqual(out.functions, withMpi);
    for (const [name, e] of Object.entries(out.errors)) {
      assert.match(e, /^ERR_MPI_UNAVAILABLE: MPI is unavailable: the fluidimage native core was built without MPI/, name);
      assert.match(e, /libopenmpi-dev/);
      assert.match(e, /module load/);
      assert.match(e, /npm run build:native/);
    }
  });
});
