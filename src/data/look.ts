/**
 * What an FVQA-mini entity looks like: the vocabulary of looks (shape, body colour, pattern, number of
 * marks, background) that the world draws from (world.ts) and the renderer draws (render.ts).
 */

export const SHAPES = ['circle', 'square', 'triangle', 'diamond', 'hexagon', 'star', 'cross'] as const;
export type Shape = (typeof SHAPES)[number];

/** Body colours: names and sRGB values chosen far apart so pixels identify them. */
export const COLOURS = {
  red: [220, 50, 47],
  orange: [240, 140, 30],
  yellow: [235, 205, 40],
  green: [60, 170, 70],
  teal: [30, 160, 160],
  blue: [45, 100, 220],
  purple: [140, 70, 190],
  pink: [235, 120, 175],
  brown: [140, 90, 50],
  grey: [130, 130, 130],
} as const satisfies Record<string, readonly [number, number, number]>;
export type ColourName = keyof typeof COLOURS;
export const COLOUR_NAMES = Object.keys(COLOURS) as ColourName[];

export const PATTERNS = ['plain', 'striped', 'spotted', 'checkered', 'ringed'] as const;
export type Pattern = (typeof PATTERNS)[number];

/** Light backgrounds (every channel >= 205) in distinct tints, so body, pattern and marks stand out. */
export const BACKGROUNDS: readonly (readonly [number, number, number])[] = [
  [222, 234, 255],
  [255, 232, 212],
  [218, 246, 218],
  [246, 222, 246],
  [210, 240, 240],
  [250, 250, 205],
];

export const MIN_MARKS = 1;
export const MAX_MARKS = 6;

/** Drawn look of an entity; images add per-sample jitter on top (render.ts). */
export interface EntityLook {
  shape: Shape;
  colour: ColourName;
  pattern: Pattern;
  marks: number;
  background: number;
}
