/**
 * Known displacement fields for synthetic PIV images. A field gives the displacement
 * (pixels, from image 0 to image 1) at a point, defined at the mid-time position.
 */

export type Vec2 = [number, number];
/** dx, dy at (x = column, y = row). */
export type DisplacementField = (x: number, y: number) => Vec2;

export interface FieldSpec {
  kind: 'uniform' | 'vortex' | 'shear' | 'uniform+vortex';
  /** uniform: the displacement. */
  dx?: number;
  dy?: number;
  /** vortex: peak azimuthal displacement (pixels) and core radius (pixels); centre defaults to the image centre. */
  peak?: number;
  core?: number;
  cx?: number;
  cy?: number;
  /** shear: dx = amplitude * sin(2 pi y / wavelength). */
  amplitude?: number;
  wavelength?: number;
}

/** Lamb-Oseen: u_theta(r) = C (1 - exp(-r^2/rc^2)) / r, whose maximum is at r = 1.1209 rc. */
function lambOseen(peak: number, rc: number, cx: number, cy: number): DisplacementField {
  const rPeak = 1.1209 * rc;
  const c = (peak * rPeak) / (1 - Math.exp(-(rPeak * rPeak) / (rc * rc)));
  return (x, y) => {
    const rx = x - cx;
    const ry = y - cy;
    const r2 = rx * rx + ry * ry;
    if (r2 < 1e-12) return [0, 0];
    // u_theta / r, counter-clockwise in (x, y) with y downward is fine: the sign is a convention.
    const f = (c * (1 - Math.exp(-r2 / (rc * rc)))) / r2;
    return [-ry * f, rx * f];
  };
}

/** Builds the field of a spec for an image of shape [ny, nx]. */
export function makeField(spec: FieldSpec, shape: [number, number]): DisplacementField {
  const [ny, nx] = shape;
  const cx = spec.cx ?? (nx - 1) / 2;
  const cy = spec.cy ?? (ny - 1) / 2;
  switch (spec.kind) {
    case 'uniform': {
      const dx = spec.dx ?? 0;
      const dy = spec.dy ?? 0;
      return () => [dx, dy];
    }
    case 'vortex':
      return lambOseen(spec.peak ?? 6, spec.core ?? Math.min(nx, ny) / 8, cx, cy);
    case 'shear': {
      const a = spec.amplitude ?? 4;
      const k = (2 * Math.PI) / (spec.wavelength ?? 128);
      return (_x, y) => [a * Math.sin(k * y), 0];
    }
    case 'uniform+vortex': {
      const v = lambOseen(spec.peak ?? 1, spec.core ?? Math.min(nx, ny) / 8, cx, cy);
      const dx = spec.dx ?? 0;
      const dy = spec.dy ?? 0;
      return (x, y) => {
        const [vx, vy] = v(x, y);
        return [dx + vx, dy + vy];
      };
    }
  }
}
