/**
 * What the launcher (mpirun, mpiexec, srun) announced in the environment, read without
 * touching MPI: the CLI uses it to pick the MPI executor only when it was started as
 * several ranks, so a plain `fluidimage piv DIR` never initialises MPI.
 */

export interface LaunchEnv {
  /** Ranks the launcher started. */
  size: number;
  /** This process's rank, when the launcher says. */
  rank: number | undefined;
  /** The variable the size was read from, e.g. OMPI_COMM_WORLD_SIZE. */
  variable: string;
  /** Who sets it, for messages. */
  launcher: string;
}

type Env = Readonly<Record<string, string | undefined>>;

// In order of precedence. Slurm's variables come last: `mpirun` inside an allocation
// leaves them set in every rank, next to its own.
const SOURCES: ReadonlyArray<{ size: string; rank: string; launcher: string }> = [
  { size: 'OMPI_COMM_WORLD_SIZE', rank: 'OMPI_COMM_WORLD_RANK', launcher: 'Open MPI (mpirun/prterun)' },
  { size: 'PMI_SIZE', rank: 'PMI_RANK', launcher: 'a PMI launcher (MPICH/Intel MPI mpiexec, srun --mpi=pmi2)' },
  { size: 'MV2_COMM_WORLD_SIZE', rank: 'MV2_COMM_WORLD_RANK', launcher: 'MVAPICH mpirun_rsh' },
];

function positiveInt(s: string | undefined): number | undefined {
  if (s === undefined || !/^\s*\d+\s*$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && Number.isSafeInteger(n) ? n : undefined;
}

function nonNegativeInt(s: string | undefined): number | undefined {
  return s !== undefined && /^\s*\d+\s*$/.test(s) ? Number(s) : undefined;
}

/** The launch the environment describes, or undefined when no launcher variable is set. */
export function envLaunch(env: Env = process.env): LaunchEnv | undefined {
  for (const s of SOURCES) {
    const size = positiveInt(env[s.size]);
    if (size !== undefined) return { size, rank: nonNegativeInt(env[s.rank]), variable: s.size, launcher: s.launcher };
  }
  // Slurm: only inside a job step (srun), which sets SLURM_STEP_ID. A batch script has
  // SLURM_NTASKS (the allocation) but is a single process.
  const step = env.SLURM_STEP_ID;
  if (step !== undefined && /^\d+$/.test(step)) {
    const size = positiveInt(env.SLURM_STEP_NUM_TASKS) ?? positiveInt(env.SLURM_NTASKS);
    if (size !== undefined) {
      const variable = env.SLURM_STEP_NUM_TASKS !== undefined ? 'SLURM_STEP_NUM_TASKS' : 'SLURM_NTASKS';
      return { size, rank: nonNegativeInt(env.SLURM_PROCID), variable, launcher: 'Slurm srun' };
    }
  }
  return undefined;
}

/** Ranks the environment announces (1 when not started by a launcher). Never touches MPI. */
export function envRankCount(env: Env = process.env): number {
  return envLaunch(env)?.size ?? 1;
}

/** Error of a launch that MPI does not see as the launcher described it. */
export class LauncherMismatchError extends Error {
  readonly code = 'ERR_MPI_LAUNCHER';
}

/**
 * Checks MPI's world size against the environment. Throws LauncherMismatchError when the
 * launcher started N > 1 ranks but MPI sees another number (typically 1: each process
 * would then run the whole job alone). `libraryVersion` names the MPI the addon uses.
 */
export function checkLaunchEnv(mpiSize: number, libraryVersion: string, env: Env = process.env): void {
  const launch = envLaunch(env);
  if (launch === undefined || launch.size <= 1 || launch.size === mpiSize) return;
  const slurm = launch.variable.startsWith('SLURM_');
  const causes = [
    `the job was launched with an MPI other than the one the addon is built with (${libraryVersion.split('\n')[0]}); ` +
      `use that MPI's mpirun, or rebuild the addon against the MPI you launch with (module load it, then npm run build:native)`,
    slurm
      ? 'srun started the ranks without an MPI plugin this MPI understands: use `srun --mpi=pmix` (Open MPI) or mpirun inside the allocation'
      : 'srun was used without `--mpi=pmix` (with Open MPI, only PMIx works)',
  ];
  throw new LauncherMismatchError(
    `${launch.launcher} started ${launch.size} ranks (${launch.variable}=${launch.size}) but MPI reports a world of ` +
      `${mpiSize} rank${mpiSize === 1 ? '' : 's'}, so each process would work alone. Likely causes: ` +
      causes.map((c, i) => `(${i + 1}) ${c}`).join('; ') + '.');
}
