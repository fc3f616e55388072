/**
 * A real, private Slurm for the tests of the batch templates (slurm/*.sbatch): munged,
 * slurmctld and slurmd started as child processes on a minimal slurm.conf in a temporary
 * directory (own munge key and socket, free ports), so that nothing clashes with a Slurm or
 * munged already on the machine or started by another test run. Needs root (slurmd
 * launches jobs as their user, munged must run as user munge).
 *
 * Single node (default): one slurmd as node `localhost`. Multi-node (`{ hosts }`, a test bed
 * of test/helpers/hosts.ts): one slurmd per host, in its namespace with its hostname
 * (`slurmd -N HOST`, NodeAddr its address), slurmctld and munged in the root namespace
 * (the bridge's address); each slurmd has a node-local TmpFS (PMIx puts per-step files
 * there under names that would collide between nodes) and an /etc/hosts naming the nodes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, chownSync, chmodSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './cli.js';
import type { Hosts } from './hosts.js';

/** Slurm cannot run here; the message says why (for the skip message). */
export class SlurmUnavailable extends Error {}

/** One record of `scontrol show job` (an array job has one per task). */
export interface JobRecord {
  jobId: string;
  /** ArrayTaskId, for the tasks of a job array. */
  arrayTaskId?: string;
  /** PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ... */
  state: string;
  /** "status:signal", e.g. "0:0", "3:0". */
  exitCode: string;
  /** The whole record, for assertion messages. */
  raw: string;
}

export interface Slurm {
  /** The private directory: slurm.conf, state, spool, logs. */
  readonly dir: string;
  /** process.env plus SLURM_CONF: for every Slurm client the tests run. */
  readonly env: NodeJS.ProcessEnv;
  /** MpiDefault written in slurm.conf (pmix when the plugin exists, else none). */
  readonly mpiDefault: string;
  /** The node names (["localhost"] on a single node). */
  readonly nodes: readonly string[];
  /** `sbatch --parsable ...args`; resolves with the job id, rejects with sbatch's error. */
  sbatch(args: readonly string[], opts?: { cwd?: string }): Promise<string>;
  /** The records of `scontrol show job ID` ([] once Slurm forgot the job). */
  job(id: string): Promise<JobRecord[]>;
  /** Polls until every record of the job is in a final state; rejects after timeoutMs. */
  waitJob(id: string, timeoutMs: number): Promise<JobRecord[]>;
  /** `scancel ...args`. */
  scancel(args: readonly string[]): Promise<void>;
  /** Cancels every job left (waits until the queue is empty, 15 s at most). */
  cancelAll(): Promise<void>;
  /** The last lines of the daemons' logs (for failure messages). */
  logTail(lines?: number): string;
  /** Pids of the daemons still running (munged, slurmctld, each slurmd). */
  daemonPids(): number[];
  /** Cancels the jobs left, stops the daemons this helper started (by pid), removes dir. */
  stop(): Promise<void>;
}

const FINAL_STATES = new Set([
  'COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'PREEMPTED', 'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE',
]);

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs a command without a shell, never rejecting (tests read the status). */
function run(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: stderr + String(e) });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const p = r.status === 0 ? r.stdout.trim() : '';
  return p !== '' ? p : undefined;
}

/** Why Slurm cannot be started here (not root, programs missing), or undefined. */
export function slurmMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root (slurmd must run as root to launch jobs)';
  const missing = ['slurmctld', 'slurmd', 'munged', 'munge', 'unmunge', 'sbatch', 'srun', 'scontrol', 'sinfo', 'scancel', 'squeue']
    .filter((c) => which(c) === undefined);
  if (missing.length > 0) return `missing ${missing.join(', ')} (Debian: apt-get install slurm-wlm munge)`;
  return undefined;
}

/** Whether the munged of `socket` encodes and decodes a credential. */
function mungeAnswers(socket: string): boolean {
  const cred = spawnSync('munge', ['-n', '-S', socket], { encoding: 'utf8', timeout: 5_000 });
  return cred.status === 0 && spawnSync('unmunge', ['-S', socket], { input: cred.stdout, stdio: ['pipe', 'ignore', 'ignore'], timeout: 5_000 }).status === 0;
}

function idOf(flag: '-u' | '-g', user: string): number {
  const r = spawnSync('id', [flag, user], { encoding: 'utf8' });
  if (r.status !== 0) throw new SlurmUnavailable(`no user ${user} (id ${flag} ${user}: ${r.stderr.trim()})`);
  return Number(r.stdout.trim());
}

/**
 * A free TCP port below the ephemeral range (so that no outgoing connection takes it between
 * this check and the daemon's bind), random so that parallel test runs do not collide.
 */
async function freePort(avoid: ReadonlySet<number>): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    if (avoid.has(port)) continue;
    const ok = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen({ port, host: '0.0.0.0', exclusive: true }, () => srv.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new SlurmUnavailable('no free TCP port found in 20000-29999');
}

function tail(path: string, lines: number): string {
  if (!existsSync(path)) return `(${path}: none)`;
  const all = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
  return all.slice(-lines).join('\n');
}

/** The checkout the jobs run (dist/run.js), as the templates' FLUIDIMAGE_HOME. */
export const FLUIDIMAGE_HOME = REPO_ROOT.replace(/\/+$/, '');

/**
 * sbatch of the template slurm/NAME with FLUIDIMAGE_HOME (and `vars`) exported, run in `dir`
 * (its output file lands there), 10 minutes of walltime; resolves with the job id.
 */
export function submitTemplate(slurm: Slurm, dir: string, name: string, args: readonly string[],
  opts: { sbatch?: readonly string[]; vars?: readonly string[] } = {}): Promise<string> {
  const exp = ['ALL', `FLUIDIMAGE_HOME=${FLUIDIMAGE_HOME}`, ...(opts.vars ?? [])].join(',');
  return slurm.sbatch(['--time=10', `--chdir=${dir}`, `--export=${exp}`, ...(opts.sbatch ?? ['--ntasks-per-node=2']),
    join(FLUIDIMAGE_HOME, 'slurm', name), ...args], { cwd: dir });
}

/**
 * Polls `count()` (e.g. the results written so far) until it reaches `n` while job `id`
 * runs; resolves with the count seen, rejects when the job ends first or after timeoutMs.
 */
export async function untilCount(slurm: Slurm, id: string, count: () => Promise<number>, n: number, timeoutMs = 60_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const seen = await count();
    if (seen >= n) return seen;
    const [rec] = await slurm.job(id);
    if (rec !== undefined && !['PENDING', 'CONFIGURING', 'RUNNING'].includes(rec.state)) {
      throw new Error(`job ended before ${n} results (${seen}): ${describeJob([rec])}`);
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`${seen} results after ${timeoutMs} ms: ${describeJob(await slurm.job(id))}`);
    await sleep(50);
  }
}

/** "ID_TASK: STATE EXIT" of each record, for assertion messages. */
export function describeJob(records: readonly JobRecord[]): string {
  return records.map((r) => `${r.jobId}${r.arrayTaskId ? `_${r.arrayTaskId}` : ''}: ${r.state} ${r.exitCode}`).join(', ');
}

/** A job's Slurm output file, for assertion messages. */
export function outText(path: string): string {
  return existsSync(path) ? `--- ${path} ---\n${readFileSync(path, 'utf8')}` : `(no ${path})`;
}

/** Parses `scontrol show job` output: records are separated by blank lines. */
export function parseJobs(text: string): JobRecord[] {
  return text.split(/\n\s*\n/).map((r) => r.trim()).filter((r) => r.startsWith('JobId=')).map((raw) => {
    const field = (k: string) => new RegExp(`(?:^|\\s)${k}=(\\S+)`).exec(raw)?.[1];
    return {
      jobId: field('JobId') ?? '',
      arrayTaskId: field('ArrayTaskId'),
      state: field('JobState') ?? 'UNKNOWN',
      exitCode: field('ExitCode') ?? '',
      raw,
    };
  });
}

/**
 * Starts munged, slurmctld and slurmd (one per host of `hosts`, else one as `localhost`);
 * throws SlurmUnavailable when it cannot.
 */
export async function startSlurm(opts: { hosts?: Hosts } = {}): Promise<Slurm> {
  const hosts = opts.hosts;
  const why = slurmMissing();
  if (why !== undefined) throw new SlurmUnavailable(why);
  const dir = await mkdtemp(join(tmpdir(), 'fluidimage-slurm-'));
  const conf = join(dir, 'slurm.conf');
  const env: NodeJS.ProcessEnv = { ...process.env, SLURM_CONF: conf };
  const children: { name: string; proc: ChildProcess }[] = [];
  const ctldLog = join(dir, 'slurmctld.log');
  const nodes = hosts?.names ?? ['localhost'];
  /** Daemon name -> log file (slurmd@NODE for each node of a multi-node Slurm). */
  const slurmds = hosts === undefined ? ['slurmd'] : nodes.map((n) => `slurmd@${n}`);
  const slurmdLog = (name: string) => join(dir, hosts === undefined ? 'slurmd.log' : `slurmd-${name.slice('slurmd@'.length)}.log`);

  const nonEmpty = (path: string) => existsSync(path) && readFileSync(path, 'utf8').trim() !== '';
  /**
   * The last lines of each daemon's log file, else of what it printed (with -D the daemons
   * print their log too; a failure before the log file is opened is only printed).
   */
  const logTail = (lines = 12) =>
    ([['slurmctld', ctldLog], ...slurmds.map((n) => [n, slurmdLog(n)] as const), ['munged', undefined]] as const)
      .map(([name, log]) => (log !== undefined && nonEmpty(log) ? log : join(dir, `${name}.out`)))
      .filter(nonEmpty)
      .map((path) => `--- ${path} ---\n${tail(path, lines)}`).join('\n') || '(no daemon logs)';

  /** Starts a daemon in the foreground (on a host of the bed), stdout and stderr to a file of dir. */
  const daemon = (name: string, cmd: string, args: string[], o: { ids?: { uid: number; gid: number }; host?: string; mounts?: string[][] } = {}) => {
    const fd = openSync(join(dir, `${name}.out`), 'a');
    const options = { env, cwd: dir, stdio: ['ignore', fd, fd] as ['ignore', number, number], ...o.ids };
    const proc = o.host !== undefined && hosts !== undefined
      ? hosts.spawn(o.host, [cmd, ...args], { ...options, mounts: o.mounts })
      : spawn(cmd, args, options);
    closeSync(fd);
    // A spawn failure is seen as an exit (the checks below look at exitCode/signalCode).
    proc.on('error', () => undefined);
    children.push({ name, proc });
    return proc;
  };
  const alive = (p: ChildProcess) => p.exitCode === null && p.signalCode === null && p.pid !== undefined;

  // Safety net: a crashed test run must not leave daemons behind (after() normally stops them).
  const killAll = () => { for (const c of children) if (alive(c.proc)) c.proc.kill('SIGKILL'); };
  process.once('exit', killAll);

  const queued = async (): Promise<string[]> => {
    const q = await run('squeue', ['-h', '-o', '%A'], { env, timeoutMs: 5_000 });
    return q.code === 0 ? q.stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '') : [];
  };
  /** Cancels every job of this Slurm and waits (15 s at most) until the queue is empty. */
  const cancelAll = async (): Promise<void> => {
    const ids = await queued();
    if (ids.length === 0) return;
    await run('scancel', ids, { env, timeoutMs: 5_000 });
    const t0 = Date.now();
    while ((await queued()).length > 0 && Date.now() - t0 < 15_000) await sleep(300);
  };

  let stopped = false;
  const stopAll = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // Jobs first, while slurmd is up, so that no slurmstepd (a daemon of its own, which
    // stopping slurmd would leave behind) outlives the test.
    const ctld = children.find((c) => c.name === 'slurmctld');
    if (ctld !== undefined && alive(ctld.proc)) await cancelAll();
    // slurmd before slurmctld (no "node not responding" churn), munged last.
    for (const name of [...slurmds, 'slurmctld', 'munged']) {
      const c = children.find((x) => x.name === name);
      if (c === undefined || !alive(c.proc)) continue;
      const exited = new Promise<void>((r) => c.proc.once('exit', () => r()));
      c.proc.kill('SIGTERM');
      const hard = setTimeout(() => c.proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(hard);
    }
    process.removeListener('exit', killAll);
    await rm(dir, { recursive: true, force: true });
  };

  const fail = async (message: string): Promise<never> => {
    const logs = logTail();
    await stopAll();
    throw new SlurmUnavailable(`${message}\n${logs}`);
  };

  let socket = '';
  try {
    // --- munge: the daemons and clients authenticate every message with it. A private
    // munged (own key and socket in dir, AuthInfo=socket=... in slurm.conf): nothing shared
    // with a system munged or another test run that could stop it, nothing touched outside dir.
    const uid = idOf('-u', 'munge');
    const gid = idOf('-g', 'munge');
    chmodSync(dir, 0o755); // munged runs as munge and refuses paths it cannot resolve
    const mdir = join(dir, 'munge');
    mkdirSync(mdir);
    const key = join(mdir, 'munge.key');
    // mungekey comes with munge >= 0.5.14; older ones: random bytes.
    if (spawnSync('mungekey', ['--create', `--keyfile=${key}`], { stdio: 'ignore' }).status !== 0) {
      spawnSync('dd', ['if=/dev/urandom', `of=${key}`, 'bs=1024', 'count=1'], { stdio: 'ignore' });
    }
    chownSync(key, uid, gid);
    chmodSync(key, 0o400);
    chownSync(mdir, uid, gid);
    chmodSync(mdir, 0o711); // clients need to reach the socket; munged rejects writable dirs
    socket = join(mdir, 'munge.socket');
    // As user munge directly (not via runuser, which forks: its pid would not be munged's).
    const munged = daemon('munged', 'munged', ['--foreground', `--socket=${socket}`, `--key-file=${key}`,
      `--pid-file=${join(mdir, 'munged.pid')}`, `--log-file=${join(mdir, 'munged.log')}`, `--seed-file=${join(mdir, 'munged.seed')}`], { ids: { uid, gid } });
    const mungeStart = Date.now();
    while (!mungeAnswers(socket)) {
      if (!alive(munged)) await fail(`munged exited (${String(munged.exitCode ?? munged.signalCode)})`);
      if (Date.now() - mungeStart > 10_000) await fail('munged did not answer in 10 s');
      await sleep(100);
    }

    // --- slurm.conf: the minimum for one node, everything private to dir.
    const ctldPort = await freePort(new Set());
    const slurmdPort = await freePort(new Set([ctldPort]));
    const cpus = availableParallelism();
    // Job ids unique across test runs at once: Open MPI under srun names its session
    // directories and shared-memory segments after the PMIx namespace "slurm.pmix.<job>.<step>",
    // so two private Slurms both running their job 3 on this host collide (hangs, crashes).
    const firstJobId = 100_000 + Math.floor(Math.random() * 50_000_000);
    mkdirSync(join(dir, 'state'));
    mkdirSync(join(dir, 'spool'));
    for (const n of hosts === undefined ? [] : nodes) mkdirSync(join(dir, 'spool', n));
    const etcHosts = join(dir, 'hosts');
    await writeFile(etcHosts, `127.0.0.1 localhost\n${(hosts?.hosts ?? []).map((h) => `${h.address} ${h.name}\n`).join('')}`);
    mkdirSync(join(dir, 'tmp'));
    const nodeLines = hosts === undefined
      ? [{ name: 'localhost', addr: '127.0.0.1' }]
      : hosts.hosts.map((h) => ({ name: h.name, addr: h.address }));
    const confOf = (mpi: string) => confText({ dir, socket, firstJobId, ctldPort, slurmdPort, cpus, mpi, nodes: nodeLines,
      ctldAddr: hosts?.gateway ?? '127.0.0.1', perNode: hosts !== undefined });
    await writeFile(conf, confOf('none'));
    // pmix as the default when the plugin is there (`srun --mpi=list` only reads slurm.conf).
    const list = await run('srun', ['--mpi=list'], { env });
    const mpiDefault = /^\s*pmix\s*$/m.test(list.stdout + list.stderr) ? 'pmix' : 'none';
    if (mpiDefault !== 'none') await writeFile(conf, confOf(mpiDefault));

    const ctld = daemon('slurmctld', 'slurmctld', ['-D', '-f', conf]);
    const slurmdProcs = hosts === undefined
      ? [daemon('slurmd', 'slurmd', ['-D', '-N', 'localhost', '-f', conf])]
      : nodes.map((node, k) => {
        // Node-local: TmpFS (bind-mounted over dir/tmp for this slurmd and its jobs only),
        // and an /etc/hosts naming the nodes.
        const local = join(dir, 'tmp', `.${node}`);
        mkdirSync(local, { recursive: true });
        return daemon(slurmds[k], 'slurmd', ['-D', '-N', node, '-f', conf], { host: node, mounts: [
          ['--bind', local, join(dir, 'tmp')], ['--bind', etcHosts, '/etc/hosts']] });
      });

    // --- up when the node is idle (registered, ReturnToService=2 clears any DOWN state).
    const t0 = Date.now();
    let last = '';
    for (;;) {
      if (!alive(ctld)) await fail(`slurmctld exited (${String(ctld.exitCode ?? ctld.signalCode)})`);
      for (const [k, p] of slurmdProcs.entries()) if (!alive(p)) await fail(`${slurmds[k]} exited (${String(p.exitCode ?? p.signalCode)})`);
      const s = await run('sinfo', ['-h', '-N', '-o', '%N %t'], { env, timeoutMs: 5_000 });
      last = (s.stdout + s.stderr).trim();
      const idle = s.stdout.split('\n').filter((l) => / idle$/.test(l.trim())).length;
      if (s.code === 0 && idle === nodes.length) break;
      if (Date.now() - t0 > 20_000) await fail(`the node(s) did not become idle in 20 s (sinfo: ${last || 'nothing'})`);
      await sleep(200);
    }

    const job = async (id: string): Promise<JobRecord[]> => {
      const r = await run('scontrol', ['show', 'job', id], { env });
      // "Invalid job id specified" once the record is purged (MinJobAge): nothing to show.
      return r.code === 0 ? parseJobs(r.stdout) : [];
    };

    return {
      dir,
      env,
      mpiDefault,
      nodes,
      async sbatch(args, opts = {}) {
        const r = await run('sbatch', ['--parsable', ...args], { env, cwd: opts.cwd });
        const id = r.stdout.trim().split(';')[0];
        if (r.code !== 0 || !/^\d+$/.test(id)) throw new Error(`sbatch ${args.join(' ')} -> ${r.code}\n${r.stdout}${r.stderr}`);
        return id;
      },
      job,
      async waitJob(id, timeoutMs) {
        const start = Date.now();
        let records: JobRecord[] = [];
        for (;;) {
          records = await job(id);
          if (records.length > 0 && records.every((r) => FINAL_STATES.has(r.state))) return records;
          if (Date.now() - start > timeoutMs) {
            throw new Error(`job ${id} not finished after ${timeoutMs} ms:\n${records.map((r) => r.raw).join('\n\n')}\n${logTail()}`);
          }
          await sleep(250);
        }
      },
      async scancel(args) {
        const r = await run('scancel', args, { env });
        if (r.code !== 0) throw new Error(`scancel ${args.join(' ')} -> ${r.code}\n${r.stdout}${r.stderr}`);
      },
      cancelAll,
      logTail,
      daemonPids: () => children.filter((c) => alive(c.proc)).map((c) => c.proc.pid!),
      stop: stopAll,
    };
  } catch (e) {
    // Whatever failed after munged or a daemon started: stop them (a no-op after fail()).
    await stopAll();
    throw e;
  }
}

interface ConfOptions {
  dir: string; socket: string; firstJobId: number; ctldPort: number; slurmdPort: number; cpus: number; mpi: string;
  nodes: readonly { name: string; addr: string }[];
  /** The address slurmd, srun and the clients reach slurmctld at. */
  ctldAddr: string;
  /** Several slurmd sharing dir: per-node spool, pid and log files (%n: the node name). */
  perNode: boolean;
}

function confText(o: ConfOptions): string {
  const p = (name: string) => join(o.dir, name);
  const slurmd = (file: string) => p(o.perNode ? file.replace('slurmd', 'slurmd-%n') : file);
  const names = o.nodes.map((n) => n.name).join(',');
  return `# Private Slurm of the fluidimage tests (test/helpers/slurm.ts).
ClusterName=fluidimage-test
SlurmctldHost=localhost(${o.ctldAddr})
SlurmctldPort=${o.ctldPort}
SlurmdPort=${o.slurmdPort}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=${o.socket}
StateSaveLocation=${p('state')}
SlurmdSpoolDir=${o.perNode ? p('spool/%n') : p('spool')}
# PMIx puts per-step directories there (/tmp/spmix_appdir_<uid>_<job>.<step> by default):
# private, as job ids of two test runs at once collide.
TmpFS=${p('tmp')}
SlurmctldPidFile=${p('slurmctld.pid')}
SlurmdPidFile=${slurmd('slurmd.pid')}
SlurmctldLogFile=${p('slurmctld.log')}
SlurmdLogFile=${slurmd('slurmd.log')}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=${o.mpi}
ReturnToService=2
FirstJobId=${o.firstJobId}
# Schedule batch jobs at submission (default: up to 3 s later, for high-throughput sites).
SchedulerParameters=batch_sched_delay=0
# Short grace between SIGTERM and SIGKILL of cancelled jobs: the tests end quickly.
KillWait=5
${o.nodes.map((n) => `NodeName=${n.name} NodeAddr=${n.addr} CPUs=${o.cpus} RealMemory=1000 State=UNKNOWN`).join('\n')}
PartitionName=debug Nodes=${names} Default=YES MaxTime=INFINITE State=UP
`;
}
