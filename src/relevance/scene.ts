/**
 * Procedural scenes with ground truth: objects of several colours, textures and shapes on a soft,
 * neutral background, each with its exact pixel mask. Seeded (mulberry32), so a seed always gives
 * the same image. Used by the demo, the tests and the relevance evaluation.
 */
import { ValueError } from '../errors.js';
import { mulberry32 } from '../tensor/tensor.js';
import type { RgbaImage } from '../viz/png.js';
import { type RgbImage, rgbToRgba } from './image-ops.js';

/** Colours a scene object can have (all are lexicon words). */
export const SCENE_COLOURS = Object.freeze(['red', 'orange', 'yellow', 'green', 'cyan', 'blue', 'purple', 'magenta'] as const);
/** A scene object's colour (one of SCENE_COLOURS). */
export type SceneColour = (typeof SCENE_COLOURS)[number];
/** Surface textures. "striped", "checkered" and "dotted" are all lexicon "striped" (patterned). */
export const SCENE_TEXTURES = Object.freeze(['solid', 'striped', 'checkered', 'dotted'] as const);
/** A scene object's surface texture (one of SCENE_TEXTURES). */
export type SceneTexture = (typeof SCENE_TEXTURES)[number];
/** Shapes a scene object can have (the triangle points up; the ellipse is wider than tall). */
export const SCENE_SHAPES = Object.freeze(['circle', 'rect', 'triangle', 'ellipse'] as const);
/** A scene object's shape (one of SCENE_SHAPES). */
export type SceneShape = (typeof SCENE_SHAPES)[number];

const RGB: Record<SceneColour, [number, number, number]> = {
  red: [0.85, 0.12, 0.1], orange: [0.98, 0.55, 0.08], yellow: [0.95, 0.86, 0.12], green: [0.12, 0.62, 0.22],
  cyan: [0.12, 0.78, 0.85], blue: [0.12, 0.26, 0.86], purple: [0.5, 0.18, 0.72], magenta: [0.86, 0.14, 0.74],
};

/** The sRGB value used for a scene colour. */
export function sceneColourRgb(c: SceneColour): [number, number, number] {
  return [...RGB[c]];
}

/** One object and its ground-truth mask. */
export interface SceneObject {
  /** '<colour> <texture> <shape>', e.g. 'red striped circle'. */
  name: string;
  colour: SceneColour;
  texture: SceneTexture;
  shape: SceneShape;
  /** Bounding box in pixels. */
  box: { x: number; y: number; width: number; height: number };
  /** 1 where the object is visible, [height × width]. */
  mask: Uint8Array;
  /** Visible pixels. */
  area: number;
}

/** A generated scene. */
export interface Scene {
  /** Image width in pixels. */
  width: number;
  /** Image height in pixels. */
  height: number;
  /** The seed it was generated from (the same seed and options give the same scene). */
  seed: number;
  /** The image as planar float RGB in [0, 1] (noise included). */
  image: RgbImage;
  /** The same image as 8-bit RGBA. */
  rgba: RgbaImage;
  /** The objects in generation order, each with its exact mask. */
  objects: SceneObject[];
}

/** An object request; unspecified fields are drawn from the seed. */
export interface ObjectSpec {
  /** Default: a colour not yet used in the scene, while any is left. */
  colour?: SceneColour;
  texture?: SceneTexture;
  shape?: SceneShape;
  /** Centre x as a fraction of the width; given, the object is placed there even if it overlaps another. */
  cx?: number;
  /** Centre y as a fraction of the height. */
  cy?: number;
  /** Size as a fraction of min(width, height): circle diameter, square side (rect), triangle base and height; an ellipse is 1.3 × 0.8 of it. Default: drawn from sizeRange. */
  size?: number;
}

/** Options for {@link generateScene}. */
export interface SceneOptions {
  /** Image width in pixels, 16–8192 (default 784). */
  width?: number;
  /** Image height in pixels, 16–8192 (default 784). */
  height?: number;
  /** Integer seed (default 1). */
  seed?: number;
  /** Number of objects when `objects` is not given (default 6). */
  numObjects?: number;
  /** One spec per object (at most 32), replacing `numObjects`. */
  objects?: readonly ObjectSpec[];
  /** Per-pixel Gaussian noise σ (default 0.015). */
  noise?: number;
  /** Object size range as a fraction of min(width, height) (default [0.16, 0.26]). */
  sizeRange?: readonly [number, number];
}

function inside(shape: SceneShape, dx: number, dy: number, rx: number, ry: number): boolean {
  switch (shape) {
    case 'circle': case 'ellipse': return (dx * dx) / (rx * rx) + (dy * dy) / (ry * ry) <= 1;
    case 'rect': return Math.abs(dx) <= rx && Math.abs(dy) <= ry;
    default: { // upward triangle
      const t = (dy + ry) / (2 * ry);
      return t >= 0 && t <= 1 && Math.abs(dx) <= rx * t;
    }
  }
}

function pattern(texture: SceneTexture, x: number, y: number, period: number, angle: number): number {
  switch (texture) {
    case 'solid': return 0;
    case 'striped': {
      const u = x * Math.cos(angle) + y * Math.sin(angle);
      return Math.floor(u / (period / 2)) % 2 === 0 ? 0 : 1;
    }
    case 'checkered': return (Math.floor(x / (period / 2)) + Math.floor(y / (period / 2))) % 2 === 0 ? 0 : 1;
    default: { // dotted
      const fx = ((x % period) + period) % period - period / 2, fy = ((y % period) + period) % period - period / 2;
      return fx * fx + fy * fy <= (period * 0.3) ** 2 ? 1 : 0;
    }
  }
}

/**
 * Generates a scene. Objects are placed apart (their boxes kept from overlapping) where 200 random placements allow,
 * and where positions are given or no placement is free, a later object covers an earlier one; either way each mask
 * is exactly the pixels its object shows. Patterned objects alternate the colour with a darker shade of it.
 */
export function generateScene(options: SceneOptions = {}): Scene {
  const width = options.width ?? 784, height = options.height ?? 784, seed = options.seed ?? 1;
  if (!Number.isInteger(width) || width < 16 || width > 8192) throw new ValueError(`width must be an integer in 16..8192, got ${width}`, 'width');
  if (!Number.isInteger(height) || height < 16 || height > 8192) throw new ValueError(`height must be an integer in 16..8192, got ${height}`, 'height');
  if (!Number.isInteger(seed)) throw new ValueError(`seed must be an integer, got ${seed}`, 'seed');
  const noise = options.noise ?? 0.015;
  if (!(noise >= 0) || !Number.isFinite(noise)) throw new ValueError(`noise must be a finite number ≥ 0, got ${noise}`, 'noise');
  const [s0, s1] = options.sizeRange ?? [0.16, 0.26];
  if (!(s0 > 0 && s1 >= s0 && s1 < 1)) throw new ValueError(`sizeRange must satisfy 0 < lo ≤ hi < 1, got [${s0}, ${s1}]`, 'sizeRange');
  const rnd = mulberry32(seed);
  const specs: ObjectSpec[] = options.objects ? [...options.objects] : Array.from({ length: options.numObjects ?? 6 }, () => ({}));
  if (specs.length > SCENE_COLOURS.length * SCENE_TEXTURES.length) throw new ValueError('too many objects', 'objects');

  // Background: a soft diagonal grey gradient with two low-frequency blobs.
  const n = width * height;
  const data = new Float32Array(3 * n);
  const base = 0.55 + 0.15 * rnd(), tilt = 0.12 * (rnd() - 0.5);
  const blobs = Array.from({ length: 2 }, () => ({ x: rnd() * width, y: rnd() * height, r: 0.3 * Math.min(width, height), a: 0.08 * (rnd() - 0.5) }));
  const tint = [0.02 * (rnd() - 0.5), 0.02 * (rnd() - 0.5), 0.02 * (rnd() - 0.5)];
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    let v = base + tilt * ((x / width + y / height) - 1);
    for (const b of blobs) v += b.a * Math.exp(-((x - b.x) ** 2 + (y - b.y) ** 2) / (2 * b.r * b.r));
    for (let c = 0; c < 3; c++) data[c * n + y * width + x] = v + tint[c]!;
  }

  const usedColours = new Set<SceneColour>();
  const boxes: { x0: number; y0: number; x1: number; y1: number }[] = [];
  const objects: SceneObject[] = [];
  const minSide = Math.min(width, height);
  const pick = <T,>(arr: readonly T[]): T => arr[Math.floor(rnd() * arr.length)]!;
  for (const spec of specs) {
    const free = SCENE_COLOURS.filter((c) => !usedColours.has(c));
    const colour = spec.colour ?? pick(free.length ? free : SCENE_COLOURS);
    usedColours.add(colour);
    const texture = spec.texture ?? pick(SCENE_TEXTURES);
    const shape = spec.shape ?? pick(SCENE_SHAPES);
    let placed = false;
    for (let attempt = 0; attempt < 200 && !placed; attempt++) {
      const size = (spec.size ?? s0 + (s1 - s0) * rnd()) * minSide;
      const rx = shape === 'ellipse' ? size * 0.65 : size / 2;
      const ry = shape === 'ellipse' ? size * 0.4 : size / 2;
      const cx = spec.cx !== undefined ? spec.cx * width : rx + 4 + rnd() * (width - 2 * rx - 8);
      const cy = spec.cy !== undefined ? spec.cy * height : ry + 4 + rnd() * (height - 2 * ry - 8);
      const box = { x0: Math.floor(cx - rx), y0: Math.floor(cy - ry), x1: Math.ceil(cx + rx), y1: Math.ceil(cy + ry) };
      const margin = 0.03 * minSide;
      const clash = boxes.some((b) => box.x0 < b.x1 + margin && b.x0 < box.x1 + margin && box.y0 < b.y1 + margin && b.y0 < box.y1 + margin);
      if (clash && attempt < 199 && spec.cx === undefined) continue;
      boxes.push(box);
      placed = true;
      const rgb = RGB[colour];
      const dark = rgb.map((v) => v * 0.45) as [number, number, number];
      const period = Math.max(6, Math.round(size / (6 + 3 * rnd())));
      const angle = rnd() * Math.PI;
      const mask = new Uint8Array(n);
      let area = 0;
      for (let y = Math.max(0, box.y0); y < Math.min(height, box.y1 + 1); y++) for (let x = Math.max(0, box.x0); x < Math.min(width, box.x1 + 1); x++) {
        if (!inside(shape, x + 0.5 - cx, y + 0.5 - cy, rx, ry)) continue;
        // Later objects could only overlap when positions are forced; the later one wins.
        for (const o of objects) if (o.mask[y * width + x]) { o.mask[y * width + x] = 0; o.area--; }
        mask[y * width + x] = 1; area++;
        const col = pattern(texture, x, y, period, angle) ? dark : rgb;
        for (let c = 0; c < 3; c++) data[c * n + y * width + x] = col[c]!;
      }
      objects.push({
        name: `${colour} ${texture} ${shape}`, colour, texture, shape,
        box: { x: Math.max(0, box.x0), y: Math.max(0, box.y0), width: Math.min(width, box.x1 + 1) - Math.max(0, box.x0), height: Math.min(height, box.y1 + 1) - Math.max(0, box.y0) },
        mask, area,
      });
    }
  }
  if (noise > 0) {
    for (let i = 0; i < data.length; i += 2) {
      // Box–Muller, both outputs.
      let u = rnd();
      while (u === 0) u = rnd();
      const rad = noise * Math.sqrt(-2 * Math.log(u)), th = 2 * Math.PI * rnd();
      data[i] = data[i]! + rad * Math.cos(th);
      if (i + 1 < data.length) data[i + 1] = data[i + 1]! + rad * Math.sin(th);
    }
  }
  for (let i = 0; i < data.length; i++) data[i] = Math.min(1, Math.max(0, data[i]!));
  const image = { width, height, data };
  return { width, height, seed, image, rgba: rgbToRgba(image), objects };
}

/** The demo scene: six objects of distinct colours, textures and shapes (seed 7). */
export function demoScene(width = 784, height = 784): Scene {
  return generateScene({
    width, height, seed: 7,
    objects: [
      { colour: 'red', texture: 'striped', shape: 'circle' },
      { colour: 'blue', texture: 'solid', shape: 'rect' },
      { colour: 'green', texture: 'checkered', shape: 'triangle' },
      { colour: 'yellow', texture: 'dotted', shape: 'ellipse' },
      { colour: 'purple', texture: 'solid', shape: 'circle' },
      { colour: 'orange', texture: 'solid', shape: 'rect' },
    ],
  });
}
