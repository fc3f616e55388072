#!/usr/bin/env node
/**
 * Builds the native core of an installed fluidimage (build/Release/fluidimage_native.node)
 * with cmake-js: npm runs it at install time (`install` script); `npx fluidimage-build` runs
 * it again (install scripts skipped, system libraries installed later, another MPI). Extra
 * arguments go to cmake-js (e.g. --CDFLUIDIMAGE_MPI=OFF). Nothing is downloaded: Node-API
 * headers come from the node-api-headers package.
 *
 * Plain JavaScript, not compiled: it must run before anything else of the package works.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const atInstall = args[0] === '--install';
const cmakeArgs = atInstall ? args.slice(1) : args;

// A source checkout (npm ci in the repository): scripts/setup builds the addon there.
if (atInstall && existsSync(join(root, 'tsconfig.json'))) process.exit(0);

const works = (cmd, cmdArgs = ['--version']) => spawnSync(cmd, cmdArgs, { stdio: 'ignore' }).status === 0;
/** [what is missing, its Debian package] */
const missing = [];
if (!works('cmake')) missing.push(['cmake', 'cmake']);
if (!['c++', 'g++', 'clang++'].some((cxx) => works(cxx))) missing.push(['a C++ compiler', 'g++']);
const pkgConfig = works('pkg-config');
if (!pkgConfig) missing.push(['pkg-config', 'pkg-config']);
// CMakeLists.txt finds FFTW with pkg-config (fftw3f.pc); without pkg-config, its header tells.
if (pkgConfig ? !works('pkg-config', ['--exists', 'fftw3f']) : !existsSync('/usr/include/fftw3.h')) missing.push(['FFTW (single precision)', 'libfftw3-dev']);
if (missing.length > 0) {
  process.stderr.write(`fluidimage: cannot build the native core: missing ${missing.map((m) => m[0]).join(', ')}. ` +
    `On Debian/Ubuntu: sudo apt-get install ${missing.map((m) => m[1]).join(' ')} ` +
    '(optional: libopenmpi-dev for the MPI executor, libdeflate-dev); on a cluster: module load cmake fftw. ' +
    `Then ${atInstall ? 'install fluidimage again' : 'run npx fluidimage-build again'}.\n`);
  process.exit(1);
}

let cmakeJs;
try {
  cmakeJs = createRequire(join(root, 'package.json')).resolve('cmake-js/bin/cmake-js');
} catch {
  process.stderr.write('fluidimage: cannot build the native core: the cmake-js package is not installed (npm install fluidimage installs it)\n');
  process.exit(1);
}
const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', 'build', '--parallel', String(availableParallelism()), ...cmakeArgs],
  { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  process.stderr.write(`fluidimage: the build of the native core failed (cmake-js output above); fix the cause, then ${atInstall ? 'install fluidimage again' : 'run npx fluidimage-build again'}\n`);
  process.exit(r.status || 1);
}
