/**
 * The preprocessing of one item: its images (float32) go through the enabled tools in
 * order; the images to write are returned. Spatial tools after the last temporal tool
 * run only on the images that are written (for "i-2:i+3", one image in five).
 */
import type { ParamTree } from '../../params/tree.js';
import { enabledSteps, type ImageContext, type Step } from './tools.js';

/** The images of one item and which of them are written. */
export interface PreprocInput extends ImageContext {
  images: Float32Array[];
  /** Indices (into `images`) of the images to return, increasing. */
  outputs: number[];
}

export class WorkPreproc {
  readonly steps: Step[];
  /** Steps up to here see the whole stack. */
  private readonly stackSteps: number;

  constructor(tools: ParamTree) {
    this.steps = enabledSteps(tools);
    let last = -1;
    this.steps.forEach((s, i) => {
      if (s.temporal) last = i;
    });
    this.stackSteps = last + 1;
  }

  /** True when some enabled tool needs several images per item. */
  get needsStack(): boolean {
    return this.stackSteps > 0;
  }

  /** The processed images `input.outputs`, in that order. */
  calcul(input: PreprocInput): Float32Array[] {
    const ctx: ImageContext = { width: input.width, height: input.height, bitDepth: input.bitDepth };
    let stack = input.images;
    for (let s = 0; s < this.stackSteps; s++) {
      const step = this.steps[s]!;
      stack = step.temporal ? step.apply(stack, ctx) : stack.map((im) => step.apply(im, ctx));
    }
    let outputs = input.outputs.map((i) => {
      const im = stack[i];
      if (im === undefined) throw new RangeError(`output index ${i} outside an item of ${stack.length} image(s)`);
      return im;
    });
    for (let s = this.stackSteps; s < this.steps.length; s++) {
      const step = this.steps[s]!;
      if (step.temporal) throw new Error('unreachable: temporal step after the last temporal step');
      outputs = outputs.map((im) => step.apply(im, ctx));
    }
    return outputs;
  }
}
