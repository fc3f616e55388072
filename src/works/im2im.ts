/**
 * Image-to-image functions written by users: a JavaScript module, loaded by path, whose
 * export is either a function `(image, name) => image` or a class whose instances (built
 * with `args_init`) have a method `calcul(image, name)` (Fluidimage's convention).
 * Images are float32 arrays with their shape; the result keeps the shape.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { announceModule, splitModuleSpec } from '../params/modules.js';

export interface FloatImage {
  data: Float32Array;
  width: number;
  height: number;
}

export type Im2imFunction = (image: FloatImage, name: string) => FloatImage | Float32Array | Promise<FloatImage | Float32Array>;

/** Errors of the user's module: the message names the module and what went wrong. */
export class Im2imError extends Error {
  readonly code = 'ERR_IM2IM';
}

type Loaded = (image: FloatImage, name: string) => Promise<FloatImage>;

/**
 * A user's function of an image, any result: `spec` = "path/to/module.js" (default export)
 * or "path/to/module.js#exportName", a function or a class with `calcul` (built with
 * `argsInit`). It receives a copy of the image; what it throws becomes an Im2imError naming
 * `key`, the module and the image.
 */
export async function loadUserFunction(spec: string, argsInit: unknown[], key: string): Promise<(image: FloatImage, name: string) => Promise<unknown>> {
  const parts = splitModuleSpec(spec);
  const file = resolve(parts.file);
  const exportName = parts.exportName ?? 'default';
  if (!existsSync(file)) throw new Im2imError(`Cannot load ${key}: no such file ${file}`);
  if (/\.(ts|mts|cts)$/.test(file)) {
    throw new Im2imError(`Cannot load ${key} ${file}: TypeScript modules must be compiled to JavaScript first (e.g. npx tsc ${file})`);
  }
  announceModule(key, spec, file);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (e) {
    throw new Im2imError(`Cannot load ${key} ${file}: ${(e as Error).message}`);
  }
  const exported = mod[exportName];
  if (typeof exported !== 'function') {
    throw new Im2imError(`Expected ${key} ${spec} to export a function or a class as "${exportName}" but it exports ${Object.keys(mod).join(', ') || 'nothing'}`);
  }
  // A class (has a calcul method on its prototype) or a plain function.
  const proto = (exported as { prototype?: { calcul?: unknown } }).prototype;
  let fn: Im2imFunction;
  if (proto && typeof proto.calcul === 'function') {
    const instance = new (exported as new (...args: unknown[]) => { calcul: Im2imFunction })(...argsInit);
    fn = (im, name) => instance.calcul(im, name);
  } else {
    fn = exported as Im2imFunction;
  }
  return async (image, name) => {
    try {
      return await fn({ data: Float32Array.from(image.data), width: image.width, height: image.height }, name);
    } catch (e) {
      throw new Im2imError(`${key} ${spec} failed on ${name}: ${(e as Error).message}`);
    }
  };
}

/**
 * Loads the image-to-image function `spec` (see loadUserFunction); its results must be
 * images. `key` names the parameter in messages.
 */
export async function loadIm2im(spec: string, argsInit: unknown[] = [], key = 'im2im'): Promise<Loaded> {
  const fn = await loadUserFunction(spec, argsInit, key);
  return async (image, name) => {
    const out = (await fn(image, name)) as FloatImage | Float32Array;
    const data = out instanceof Float32Array ? out : out?.data;
    const width = out instanceof Float32Array ? image.width : out?.width;
    const height = out instanceof Float32Array ? image.height : out?.height;
    if (!(data instanceof Float32Array) || data.length !== width * height || typeof width !== 'number') {
      throw new Im2imError(`${key} ${spec} on ${name}: expected an image {data: Float32Array, width, height} or a Float32Array of ${image.width}x${image.height} values`);
    }
    return { data, width, height };
  };
}
