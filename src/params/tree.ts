/** A parameter tree as resolved (params/resolve.ts) and stored in result files. */

/** Parameter values; nested number lists (mask.polygons) are stored in result files as JSON text. */
export type ParamValue = number | string | boolean | null | number[] | string[] | number[][][];
export interface ParamTree { [key: string]: ParamValue | ParamTree }
