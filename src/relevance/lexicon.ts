/**
 * A built-in concept lexicon for using the relevance pipeline without any model: words map to
 * prototypes in texture space (a target value and a weight per texture channel). A query becomes
 * query tokens; words whose channels do not overlap are merged into one token (conjunction:
 * "red striped left" is one token), and a word that conflicts with the current token starts a new
 * one ("red blue" gives two tokens, i.e. either colour). Channels where either word's weight is
 * below 1 do not conflict; the later word wins there ("bright red" is one token).
 *
 * Known words: colours (red, orange, yellow, green, cyan, blue, purple/violet, magenta, pink, brown,
 * white, black, grey/gray), bright/light, dark, edges/edge/sharp, smooth/flat/plain,
 * striped/stripes/textured/checkered/dotted/patterned, left, right, top/upper, bottom/lower,
 * centre/center/middle.
 */
import { ValueError } from '../errors.js';
import { CH, NUM_TEXTURE_CHANNELS, type TextureChannel, textureOfColor } from './texture.js';

/** A prototype in texture space: target values and weights on some channels. */
export interface Concept {
  /** The canonical word (aliases map to it: 'gray' → 'grey'). */
  word: string;
  /** Target value μ per channel, in the texture array's normalised units ([0, 1]). */
  target: Partial<Record<TextureChannel, number>>;
  /** Weight w per channel (channels absent are ignored); a weight ≥ 1 makes the channel conflict with another word's. */
  weight: Partial<Record<TextureChannel, number>>;
}

/** One query token of a lexicon query: dense target μ and weight w over the texture channels. */
export interface ConceptToken {
  /** The (canonical) words merged into this token, in query order. */
  words: string[];
  /** Target μ per texture channel [14]; 0 where no word sets it. */
  target: Float32Array;
  /** Weight w per texture channel [14]; 0 where no word sets it (channel ignored). */
  weight: Float32Array;
}

const COLOURS: Record<string, [number, number, number]> = {
  red: [0.86, 0.1, 0.1], orange: [1, 0.55, 0.05], yellow: [0.95, 0.85, 0.1], green: [0.1, 0.65, 0.2],
  cyan: [0.1, 0.8, 0.85], blue: [0.1, 0.25, 0.85], purple: [0.5, 0.15, 0.7], magenta: [0.85, 0.1, 0.75],
  pink: [1, 0.6, 0.75], brown: [0.55, 0.33, 0.15],
};
const ALIASES: Record<string, string> = {
  violet: 'purple', gray: 'grey', light: 'bright', edge: 'edges', sharp: 'edges', flat: 'smooth', plain: 'smooth',
  stripes: 'striped', stripy: 'striped', textured: 'striped', checkered: 'striped', chequered: 'striped', dotted: 'striped',
  patterned: 'striped', upper: 'top', lower: 'bottom', center: 'centre', middle: 'centre', reddish: 'red', bluish: 'blue',
  greenish: 'green', yellowish: 'yellow',
};

function colourConcept(word: string, rgb: [number, number, number]): Concept {
  const t = textureOfColor(...rgb);
  return { word, target: { lab_a: t.lab_a, lab_b: t.lab_b, saturation: t.saturation, lab_l: t.lab_l }, weight: { lab_a: 4, lab_b: 4, saturation: 1, lab_l: 0.5 } };
}

const CONCEPTS: Record<string, Concept> = {
  ...Object.fromEntries(Object.entries(COLOURS).map(([w, c]) => [w, colourConcept(w, c)])),
  white: { word: 'white', target: { lab_l: 1, saturation: 0, lab_a: 0.5, lab_b: 0.5 }, weight: { lab_l: 2, saturation: 2, lab_a: 2, lab_b: 2 } },
  black: { word: 'black', target: { lab_l: 0, saturation: 0 }, weight: { lab_l: 2, saturation: 0.5 } },
  grey: { word: 'grey', target: { lab_l: 0.55, saturation: 0, lab_a: 0.5, lab_b: 0.5 }, weight: { lab_l: 1, saturation: 2, lab_a: 2, lab_b: 2 } },
  bright: { word: 'bright', target: { lab_l: 1 }, weight: { lab_l: 2 } },
  dark: { word: 'dark', target: { lab_l: 0 }, weight: { lab_l: 2 } },
  edges: { word: 'edges', target: { sobel_mag: 1 }, weight: { sobel_mag: 2 } },
  smooth: { word: 'smooth', target: { sobel_mag: 0, local_variance: 0 }, weight: { sobel_mag: 1, local_variance: 1 } },
  striped: { word: 'striped', target: { local_variance: 0.35, sobel_mag: 0.2 }, weight: { local_variance: 2, sobel_mag: 1 } },
  left: { word: 'left', target: { x: 0 }, weight: { x: 1 } },
  right: { word: 'right', target: { x: 1 }, weight: { x: 1 } },
  top: { word: 'top', target: { y: 0 }, weight: { y: 1 } },
  bottom: { word: 'bottom', target: { y: 1 }, weight: { y: 1 } },
  centre: { word: 'centre', target: { eccentricity: 0 }, weight: { eccentricity: 1 } },
};

/** Every word the lexicon knows (aliases included), sorted. */
export function lexiconWords(): string[] {
  return [...Object.keys(CONCEPTS), ...Object.keys(ALIASES)].sort();
}

/** The concept of a word (after aliasing), or undefined. */
export function lookupConcept(word: string): Concept | undefined {
  const w = word.toLowerCase();
  return CONCEPTS[ALIASES[w] ?? w];
}

/** A parsed lexicon query. */
export interface LexiconQuery {
  /** The query text, as given. */
  text: string;
  /** Query tokens in query order (at least one). */
  tokens: ConceptToken[];
  /** Words that are not in the lexicon (ignored, e.g. nouns like "car"). */
  unknownWords: string[];
}

/**
 * Parses a free-text query into concept tokens. Throws ValueError (argument `query`) when the
 * query is empty or names no known concept.
 */
export function parseQuery(text: string): LexiconQuery {
  if (typeof text !== 'string' || text.trim() === '') throw new ValueError('query must be a non-empty string', 'query');
  const words = text.toLowerCase().split(/[^a-z]+/).filter(Boolean);
  const tokens: ConceptToken[] = [];
  const unknownWords: string[] = [];
  let cur: ConceptToken | null = null;
  for (const w of words) {
    const c = lookupConcept(w);
    if (!c) { unknownWords.push(w); continue; }
    const chans = Object.keys(c.weight) as TextureChannel[];
    if (!cur || chans.some((ch) => cur!.weight[CH[ch]]! >= 1 && c.weight[ch]! >= 1)) {
      cur = { words: [], target: new Float32Array(NUM_TEXTURE_CHANNELS), weight: new Float32Array(NUM_TEXTURE_CHANNELS) };
      tokens.push(cur);
    }
    cur.words.push(c.word);
    for (const ch of chans) { cur.target[CH[ch]] = c.target[ch] ?? 0; cur.weight[CH[ch]] = c.weight[ch]!; }
  }
  if (tokens.length === 0) {
    throw new ValueError(`query '${text}' names no known concept; known words: ${lexiconWords().join(', ')}`, 'query');
  }
  return { text, tokens, unknownWords };
}
