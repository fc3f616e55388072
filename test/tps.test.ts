import assert from 'node:assert/strict';
import { native } from '../native.js';

function gridField(n: number, spacing: number, f: (x: number, y: number) => [number, number]) {
  const m = n * n;
  const x = new Float64Array(m);
  const y = new Float64Array(m);
  const u = new Float64Array(m);
  const v = new Float64Array(m);
  for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) {
    const k = j * n + i;
    x[k] = 7.5 + spacing * i;
    y[k] = 7.5 + spacing * j;
    [u[k], v[k]] = f(x[k], y[k]);
  }
  return { x, y, u, v };
}

describe('thin-plate-spline smoothing (subdomains)', () => {
  const smooth = (x: number, y: number): [number, number] => [2 * Math.sin(x / 60) + 0.01 * x, Math.cos(y / 50) - 0.5];

  it('reproduces a smooth field, also between the points, over several subdomains', async () => {
    const g = gridField(40, 8, smooth);
    // Evaluate between the points too (half a spacing off).
    const xNew = Float64Array.from(g.x, (v) => v + 4);
    const yNew = Float64Array.from(g.y, (v) => v + 4);
    const out = await native().tpsSmooth({ ...g, xNew, yNew, subdomSize: 200, smoothingCoef: 5, threshold: 1.5 });
    assert.equal(out.singularBoxes, 0);
    assert.equal(out.replaced, 0);
    let err = 0;
    for (let k = 0; k < xNew.length; k++) {
      if (xNew[k] > g.x[g.x.length - 1] || yNew[k] > g.y[g.y.length - 1]) continue;
      const [tu, tv] = smooth(xNew[k], yNew[k]);
      err = Math.max(err, Math.abs(out.uNew[k] - tu), Math.abs(out.vNew[k] - tv));
    }
    assert.ok(err < 0.02, `max error between points ${err}`);
    for (let k = 0; k < g.x.length; k++) assert.ok(Math.abs(out.uSmooth[k] - g.u[k]) < 0.02);
  });

  it('replaces an injected outlier by the smoothed field', async () => {
    const g = gridField(30, 8, smooth);
    const k0 = 12 * 30 + 17;
    const truth = g.u[k0];
    g.u[k0] += 6;
    const out = await native().tpsSmooth({ ...g, xNew: g.x, yNew: g.y, subdomSize: 200, smoothingCoef: 5, threshold: 1.5 });
    assert.ok(out.replaced >= 1, `${out.replaced} replaced`);
    assert.ok(Math.abs(out.uNew[k0] - truth) < 2, `at the outlier: ${out.uNew[k0]} vs ${truth} (was ${truth + 6})`);
    // Far from it, the field is untouched.
    assert.ok(Math.abs(out.uNew[2 * 30 + 2] - g.u[2 * 30 + 2]) < 0.02);
  });

  it('works with holes and validates its arguments', async () => {
    const g = gridField(20, 8, smooth);
    const keep = Array.from({ length: g.x.length }, (_, k) => k).filter((k) => k % 7 !== 3);
    const pick = (a: Float64Array) => Float64Array.from(keep, (k) => a[k]);
    const out = await native().tpsSmooth({
      x: pick(g.x), y: pick(g.y), u: pick(g.u), v: pick(g.v), xNew: g.x, yNew: g.y, subdomSize: 100, smoothingCoef: 5, threshold: 1.5,
    });
    for (let k = 3; k < g.x.length; k += 7) assert.ok(Math.abs(out.uNew[k] - g.u[k]) < 0.03, `hole ${k}`);
    assert.throws(() => native().tpsSmooth({ ...g, y: new Float64Array(3), xNew: g.x, yNew: g.y, subdomSize: 100, smoothingCoef: 5, threshold: 1 }), /y/);
    assert.throws(() => native().tpsSmooth({ ...g, xNew: g.x, yNew: g.y, subdomSize: 100, smoothingCoef: 5, threshold: 0 }), /threshold/);
  });

  it('evaluates at its own points like anywhere else (the shortcut through the boxes\' values)', async () => {
    const g = gridField(30, 8, smooth);
    g.u[100] += 4;
    const args = { ...g, subdomSize: 150, smoothingCoef: 5, threshold: 1.5 };
    const atPoints = await native().tpsSmooth({ ...args, xNew: g.x, yNew: g.y });
    // One more point: the general evaluation path.
    const xNew = Float64Array.of(...g.x, 3);
    const yNew = Float64Array.of(...g.y, 3);
    const general = await native().tpsSmooth({ ...args, xNew, yNew });
    for (let k = 0; k < g.x.length; k++) {
      assert.ok(Math.abs(atPoints.uNew[k] - general.uNew[k]) < 1e-4, `u at ${k}: ${atPoints.uNew[k]} vs ${general.uNew[k]}`);
      assert.ok(Math.abs(atPoints.vNew[k] - general.vNew[k]) < 1e-4, `v at ${k}`);
      assert.equal(atPoints.uSmooth[k], atPoints.uNew[k]);
    }
  });

  it('reuses factorisations across calls without mixing up parameters', async () => {
    const g = gridField(30, 8, smooth);
    g.v[200] -= 3;
    const run = (smoothingCoef: number) => native().tpsSmooth({ ...g, xNew: g.x, yNew: g.y, subdomSize: 150, smoothingCoef, threshold: 1.5 });
    const first = await run(5);
    const again = await run(5);
    assert.deepEqual(again.uNew, first.uNew);
    assert.deepEqual(again.vNew, first.vNew);
    // A stiffer spline smooths more: the same layouts must not reuse the first systems.
    const stiff = await run(50);
    let diff = 0;
    for (let k = 0; k < g.x.length; k++) diff = Math.max(diff, Math.abs(stiff.vNew[k] - first.vNew[k]));
    assert.ok(diff > 1e-3, `smoothing 50 vs 5 differ by ${diff}`);
  });
});
