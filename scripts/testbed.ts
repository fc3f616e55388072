/**
 * The multi-host test bed (test/helpers/hosts.ts) by hand, for benchmarks and debugging:
 *
 *   node dist/scripts/testbed.js up 4 [--slots 2]   # prints the bed's directory and mpirun options
 *   mpirun $(cat DIR/mpirun-args) -n 8 node dist/run.js piv IMAGES
 *   node dist/scripts/testbed.js exec DIR HOST CMD...  # a command on one host
 *   node dist/scripts/testbed.js down DIR             # kills its processes, removes it by name
 *
 * Root only (network namespaces). `down` removes exactly what `up` recorded in DIR/bed.json.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { HostsUnavailable, readBedState, startHosts, teardown } from '../test/helpers/hosts.js';

// The command's own words (exec's COMMAND may have options of its own): parsed per command.
const [command, ...rest] = process.argv.slice(2);

async function main(): Promise<number> {
  switch (command) {
    case 'up': {
      const { values, positionals } = parseArgs({ args: rest, options: { slots: { type: 'string', default: '2' } }, allowPositionals: true });
      const n = Number(positionals[0] ?? 4);
      const bed = await startHosts(n, { slots: Number(values.slots), keep: true });
      // The options without -n (and without --oversubscribe: add it beyond n x slots ranks).
      const args = bed.mpirunArgs(1, { oversubscribe: false }).slice(0, -2);
      writeFileSync(join(bed.dir, 'mpirun-args'), `${args.join(' ')}\n`);
      console.log(`test bed up: ${bed.names.map((h, k) => `${h} ${bed.hosts[k].address}`).join(', ')} (bridge ${bed.bridge} ${bed.gateway})`);
      console.log(`directory: ${bed.dir}`);
      console.log(`run:       mpirun $(cat ${join(bed.dir, 'mpirun-args')}) -n ${n * bed.slots} node dist/run.js piv IMAGES`);
      console.log(`remove:    node dist/scripts/testbed.js down ${bed.dir}`);
      return 0;
    }
    case 'exec': {
      const [dir, host, ...cmd] = rest;
      const state = readBedState(dir);
      if (!state.hosts.some((h) => h.name === host)) throw new Error(`${host} is not one of ${state.hosts.map((h) => h.name).join(' ')}`);
      const r = spawnSync(state.agent, [host, ...cmd.map((a) => `'${a.replace(/'/g, `'\\''`)}'`)], { stdio: 'inherit' });
      return r.status ?? 1;
    }
    case 'down': {
      const left = teardown(readBedState(rest[0]));
      if (left.length > 0) {
        console.error(`testbed: could not remove ${left.join(', ')}`);
        return 1;
      }
      console.log('test bed removed');
      return 0;
    }
    default:
      console.error('usage: testbed.js up N [--slots S] | exec DIR HOST CMD... | down DIR');
      return 2;
  }
}

main().then((code) => process.exit(code), (e: unknown) => {
  console.error(`testbed: ${e instanceof HostsUnavailable ? e.message : String(e)}`);
  process.exit(1);
});
