/**
 * A multi-host test bed on one machine: N "hosts", each a network namespace with its own
 * address on a private bridge and, for every process started in it, its own UTS hostname,
 * so that Open MPI (and Slurm) see N separate nodes that talk over TCP only. The file
 * system is shared, as on a cluster with a parallel file system.
 *
 *   root namespace: bridge <tag>br, 10.250.X.1/24 (mpirun, slurmctld)
 *   host k:         namespace <tag>h<k>, eth0 10.250.X.(10+k)/24, hostname <tag>h<k>
 *
 * Open MPI launches its daemons through an rsh agent (a script in the bed's directory) that
 * runs them with `nsenter --net=/run/netns/HOST unshare --uts`: no ssh, nor any edit of
 * /etc/hosts (the agent maps the names; Open MPI's daemons find each other by address).
 * Everything is made and removed by its exact name (never by pattern), and the processes of
 * a namespace by pid (`ip netns pids`): `stop()` in the tests' after hooks; 'exit' and
 * SIGINT/SIGTERM/SIGHUP handlers as safety nets (a SIGKILLed test run leaves its bed:
 * `node dist/scripts/testbed.js down DIR` removes it from DIR/bed.json).
 * Needs root and network namespaces; `hostsMissing()` says why not, for skip messages.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The test bed cannot be made here; the message says why (for the skip message). */
export class HostsUnavailable extends Error {}

export interface Host {
  /** Host name = namespace name = UTS hostname = Open MPI node = Slurm NodeName. */
  readonly name: string;
  /** IPv4 address of its eth0 on the bridge. */
  readonly address: string;
}

/** Everything needed to find and remove a bed (also written to `<dir>/bed.json`). */
export interface BedState {
  readonly tag: string;
  readonly dir: string;
  readonly bridge: string;
  /** The bridge's own address (the root namespace: mpirun, slurmctld). */
  readonly gateway: string;
  /** e.g. 10.250.37.0/24 */
  readonly subnet: string;
  readonly hosts: readonly Host[];
  /** Root-namespace ends of the veth pairs, one per host. */
  readonly veths: readonly string[];
  readonly slots: number;
  readonly hostfile: string;
  readonly agent: string;
}

/**
 * Mounts private to one command and its children (a mount namespace of their own), each the
 * arguments of mount(8): e.g. `['--bind', dir, '/tmp']` for a node-local /tmp while the
 * rest of the file system stays shared, `['-t', 'tmpfs', 'none', '/sys/fs/cgroup']`.
 */
export type Mounts = readonly (readonly string[])[];

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Hosts extends BedState {
  readonly names: readonly string[];
  /**
   * mpirun options that spread `ranks` ranks over the hosts (the hostfile's slots, then
   * --oversubscribe beyond them), TCP between hosts; append the program and its arguments.
   */
  mpirunArgs(ranks: number, opts?: { oversubscribe?: boolean }): string[];
  /** Runs `cmd args` on a host (its namespace and hostname), to completion. */
  exec(host: string, cmd: readonly string[], opts?: { timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string; mounts?: Mounts }): Promise<ExecResult>;
  /**
   * Starts `cmd args` on a host and returns the child (for daemons: its pid is the command's
   * own, through exec); stop() kills it.
   */
  spawn(host: string, cmd: readonly string[], opts?: SpawnOptions & { mounts?: Mounts }): ChildProcess;
  /** Takes a host's link down (`ip link set eth0 down` in its namespace): silent, no reset. */
  linkDown(host: string): void;
  linkUp(host: string): void;
  /** Pids of every process in a host's namespace. */
  pids(host: string): number[];
  /** SIGKILLs every process in the hosts' namespaces; resolves when none is left (5 s at most). */
  killAll(): Promise<void>;
  /** Kills the hosts' processes, removes namespaces, veths, bridge and directory. Idempotent. */
  stop(): Promise<void>;
}

const IP = '/usr/sbin/ip';
const NSENTER = 'nsenter';

/** Where `ip netns add` binds a namespace (its NETNS_RUN_DIR). */
function netnsPath(ns: string): string {
  return existsSync('/run/netns') ? `/run/netns/${ns}` : `/var/run/netns/${ns}`;
}
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const p = r.status === 0 ? r.stdout.trim() : '';
  return p !== '' ? p : undefined;
}

function ipBin(): string {
  return existsSync(IP) ? IP : which('ip') ?? 'ip';
}

/** `ip ...args`, synchronously; throws with ip's message on failure unless `ok` says otherwise. */
function ip(args: readonly string[], opts: { check?: boolean } = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(ipBin(), args, { encoding: 'utf8', timeout: 10_000 });
  if ((opts.check ?? true) && r.status !== 0) throw new HostsUnavailable(`ip ${args.join(' ')}: ${(r.stderr || String(r.error)).trim()}`);
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/**
 * Why the bed cannot be made here (not root, programs missing), or undefined. Whether the
 * kernel allows namespaces is only known by trying: startHosts throws HostsUnavailable.
 */
export function hostsMissing(opts: { mpirun?: boolean } = {}): string | undefined {
  if (process.platform !== 'linux') return 'not Linux (network namespaces)';
  if (process.getuid?.() !== 0) return 'not root (network namespaces, veths and a bridge need root)';
  const needed = ['ip', 'nsenter', 'unshare', 'bash', ...(opts.mpirun ?? true ? ['mpirun'] : [])];
  const missing = needed.filter((c) => which(c) === undefined);
  if (missing.length > 0) return `missing ${missing.join(', ')} (Debian: apt-get install iproute2 util-linux openmpi-bin)`;
  return undefined;
}

/** The live processes of a namespace (`ip netns pids`); [] once it is gone. */
function nsPids(ns: string): number[] {
  const r = ip(['netns', 'pids', ns], { check: false });
  if (r.status !== 0) return [];
  return r.stdout.split('\n').map((l) => Number(l.trim())).filter((p) => Number.isInteger(p) && p > 0 && p !== process.pid);
}

function killPids(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

function linkExists(name: string): boolean {
  return ip(['link', 'show', 'dev', name], { check: false }).status === 0;
}

function nsExists(ns: string): boolean {
  return ip(['netns', 'list'], { check: false }).stdout.split('\n').some((l) => l.split(' ')[0] === ns);
}

/**
 * Removes a bed by the names in its state, synchronously (usable in an 'exit' handler):
 * SIGKILL to the processes of each namespace (repeated until none is left, 5 s at most),
 * then the namespaces, the veths, the bridge and the directory. Returns what it could not
 * remove ([] when all went).
 */
export function teardown(state: BedState): string[] {
  const left: string[] = [];
  const t0 = Date.now();
  for (;;) {
    const pids = state.hosts.flatMap((h) => nsPids(h.name));
    if (pids.length === 0) break;
    killPids(pids);
    if (Date.now() - t0 > 5_000) {
      left.push(`processes ${pids.join(' ')}`);
      break;
    }
    spawnSync('sleep', ['0.05']);
  }
  for (const h of state.hosts) {
    if (nsExists(h.name) && ip(['netns', 'delete', h.name], { check: false }).status !== 0) left.push(`namespace ${h.name}`);
  }
  // Deleting a namespace deletes the veth end inside, hence the pair; the rest by name.
  for (const v of state.veths) {
    if (linkExists(v) && ip(['link', 'delete', 'dev', v], { check: false }).status !== 0) left.push(`veth ${v}`);
  }
  if (linkExists(state.bridge) && ip(['link', 'delete', 'dev', state.bridge, 'type', 'bridge'], { check: false }).status !== 0) {
    left.push(`bridge ${state.bridge}`);
  }
  rmSync(state.dir, { recursive: true, force: true });
  return left;
}

/** A word for sh, quoted. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The rsh agent Open MPI calls as `AGENT [-x] HOST COMMAND...` (COMMAND: shell words). */
function agentScript(names: readonly string[]): string {
  return `#!/bin/bash
# Open MPI's "ssh" to the namespace hosts of a fluidimage test bed (test/helpers/hosts.ts).
while [ "\${1:-}" = -x ]; do shift; done
h=\${1:?usage: $0 HOST COMMAND...}; shift
case "$h" in
  ${names.join('|')}) ;;
  *) echo "$0: $h is not a host of this test bed (${names.join(' ')})" >&2; exit 255 ;;
esac
exec nsenter --net=${netnsPath('"$h"')} unshare --uts bash -c "hostname $h; $*"
`;
}

/** Picks X in 10.250.X.0/24 and checks no interface of the root namespace uses it. */
function pickSubnet(seed: number): number {
  const used = ip(['-o', '-4', 'addr', 'show'], { check: false }).stdout;
  for (let k = 0; k < 250; k++) {
    const x = 1 + ((seed + k * 37) % 250);
    if (!used.includes(`10.250.${x}.`)) return x;
  }
  throw new HostsUnavailable('no free 10.250.X.0/24 subnet');
}

let bedCount = 0;
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Makes `n` hosts (default 2 slots each in the hostfile). `keep: true` leaves the bed up when
 * this process exits (the CLI `scripts/testbed.ts`); otherwise an 'exit' handler removes it.
 * Throws HostsUnavailable (the bed half-made is removed) when namespaces are refused.
 */
export async function startHosts(n: number, opts: { slots?: number; keep?: boolean } = {}): Promise<Hosts> {
  const why = hostsMissing({ mpirun: false });
  if (why !== undefined) throw new HostsUnavailable(why);
  if (!Number.isInteger(n) || n < 1 || n > 99) throw new RangeError(`startHosts: n = ${n}, expected 1..99`);
  const slots = opts.slots ?? 2;
  // Unique per process and bed: names clash with no other test run (interface names <= 15).
  // (A bed kept by the CLI outlives its process: a later process may have the same pid.)
  let tag = '';
  do {
    if (bedCount >= 26) throw new HostsUnavailable(`no free test-bed name fi${process.pid}[a-z]`);
    tag = `fi${process.pid}${String.fromCharCode(97 + bedCount++)}`;
  } while (linkExists(`${tag}br`) || nsExists(`${tag}h1`));
  const x = pickSubnet(process.pid + bedCount);
  const dir = mkdtempSync(join(tmpdir(), `fluidimage-hosts-${tag}-`));
  chmodSync(dir, 0o755);
  const hosts = Array.from({ length: n }, (_, k) => ({ name: `${tag}h${k + 1}`, address: `10.250.${x}.${11 + k}` }));
  const state: BedState = {
    tag, dir, bridge: `${tag}br`, gateway: `10.250.${x}.1`, subnet: `10.250.${x}.0/24`, hosts,
    veths: hosts.map((_, k) => `${tag}v${k + 1}`), slots,
    hostfile: join(dir, 'hostfile'), agent: join(dir, 'rsh-agent'),
  };
  writeFileSync(join(dir, 'bed.json'), JSON.stringify(state, null, 1));
  const children = new Set<ChildProcess>();
  let stopped = false;
  const onExit = () => {
    if (stopped) return;
    stopped = true;
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    teardown(state);
  };
  // Safety nets: the process ends without stop() (a crash, process.exit), or is interrupted
  // (Ctrl-C, kill): remove the bed, then let the signal do what it would have done.
  const onSignal = (signal: NodeJS.Signals) => {
    onExit();
    unhook();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const unhook = () => {
    process.removeListener('exit', onExit);
    for (const sig of STOP_SIGNALS) process.removeListener(sig, onSignal);
  };
  if (!opts.keep) {
    process.once('exit', onExit);
    for (const sig of STOP_SIGNALS) process.once(sig, onSignal);
  }

  try {
    ip(['link', 'add', 'name', state.bridge, 'type', 'bridge']);
    ip(['addr', 'add', `${state.gateway}/24`, 'dev', state.bridge]);
    ip(['link', 'set', 'dev', state.bridge, 'up']);
    for (const [k, h] of hosts.entries()) {
      const peer = `${tag}p${k + 1}`;
      ip(['netns', 'add', h.name]);
      ip(['link', 'add', 'name', state.veths[k], 'type', 'veth', 'peer', 'name', peer]);
      ip(['link', 'set', 'dev', peer, 'netns', h.name]);
      const inNs = (args: string[]) => ip(['netns', 'exec', h.name, ipBin(), ...args]);
      inNs(['link', 'set', 'dev', peer, 'name', 'eth0']);
      inNs(['addr', 'add', `${h.address}/24`, 'dev', 'eth0']);
      inNs(['link', 'set', 'dev', 'eth0', 'up']);
      inNs(['link', 'set', 'dev', 'lo', 'up']);
      ip(['link', 'set', 'dev', state.veths[k], 'master', state.bridge]);
      ip(['link', 'set', 'dev', state.veths[k], 'up']);
    }
    writeFileSync(state.hostfile, hosts.map((h) => `${h.name} slots=${slots}\n`).join(''));
    writeFileSync(state.agent, agentScript(hosts.map((h) => h.name)));
    chmodSync(state.agent, 0o755);
  } catch (e) {
    onExit();
    unhook();
    throw e instanceof HostsUnavailable ? e : new HostsUnavailable(String(e));
  }

  const byName = (host: string): Host => {
    const h = hosts.find((x) => x.name === host);
    if (h === undefined) throw new Error(`${host} is not a host of this bed (${hosts.map((x) => x.name).join(' ')})`);
    return h;
  };
  /**
   * argv of nsenter that runs cmd on a host, with the host's name as its hostname. Not
   * `ip netns exec`: that one mounts the namespace's own sysfs over /sys, which hides
   * /sys/fs/cgroup (slurmd 22.05 then refuses to start: "Unable to initialize cgroup plugin").
   */
  const onHost = (host: string, cmd: readonly string[], mounts: Mounts = []): string[] => {
    const mount = mounts.map((m) => `mount ${m.map(shellQuote).join(' ')} && `).join('');
    return [`--net=${netnsPath(byName(host).name)}`, 'unshare', '--uts', ...(mounts.length > 0 ? ['--mount'] : []),
      'sh', '-c', `hostname "$0" && ${mount}exec "$@"`, host, ...cmd];
  };

  const bed: Hosts = {
    ...state,
    names: hosts.map((h) => h.name),
    mpirunArgs(ranks, o = {}) {
      const root = process.getuid?.() === 0 ? ['--allow-run-as-root'] : [];
      const over = (o.oversubscribe ?? ranks > n * slots) ? ['--oversubscribe'] : [];
      return [...root, ...over, '--hostfile', state.hostfile,
        '--mca', 'plm_rsh_agent', state.agent, '--mca', 'plm_rsh_no_tree_spawn', '1',
        '--mca', 'oob_tcp_if_include', state.subnet, '--mca', 'btl_tcp_if_include', state.subnet,
        // TCP between hosts, shared memory within one (as on a cluster).
        '--mca', 'btl', 'tcp,vader,self',
        // mpirun notices a host that dropped off the network only by TCP keepalives on its
        // daemons' connections (default: after 8 minutes); here after 5 + 2 x 3 = 11 s.
        '--mca', 'oob_tcp_keepalive_time', '5', '--mca', 'oob_tcp_keepalive_intvl', '2', '--mca', 'oob_tcp_keepalive_probes', '3',
        '-n', String(ranks)];
    },
    exec(host, cmd, o = {}) {
      return new Promise((resolve) => {
        const child = spawn(NSENTER, onHost(host, cmd, o.mounts), { env: o.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
        children.add(child);
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
        child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
        child.stdin.end(o.input ?? '');
        const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30_000);
        child.on('error', (e) => { stderr += String(e); });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          children.delete(child);
          resolve({ code, signal, stdout, stderr });
        });
      });
    },
    spawn(host, cmd, o = {}) {
      const { mounts, ...rest } = o;
      const child = spawn(NSENTER, onHost(host, cmd, mounts), rest);
      children.add(child);
      child.on('error', () => undefined);
      child.on('exit', () => children.delete(child));
      return child;
    },
    linkDown(host) {
      ip(['netns', 'exec', byName(host).name, ipBin(), 'link', 'set', 'dev', 'eth0', 'down']);
    },
    linkUp(host) {
      ip(['netns', 'exec', byName(host).name, ipBin(), 'link', 'set', 'dev', 'eth0', 'up']);
    },
    pids(host) {
      return nsPids(byName(host).name);
    },
    async killAll() {
      const t0 = Date.now();
      for (;;) {
        const pids = hosts.flatMap((h) => nsPids(h.name));
        if (pids.length === 0) return;
        killPids(pids);
        if (Date.now() - t0 > 5_000) throw new Error(`processes still alive in the test bed's namespaces: ${pids.join(' ')}`);
        await sleep(50);
      }
    },
    async stop() {
      if (stopped) return;
      await bed.killAll().catch(() => undefined);
      onExit();
      unhook();
    },
  };
  return bed;
}

/** Reads the state a bed left in its directory (`<dir>/bed.json`), for the CLI's `down`. */
export function readBedState(dir: string): BedState {
  return JSON.parse(readFileSync(join(dir, 'bed.json'), 'utf8')) as BedState;
}
