/**
 * The viewer's request handler, browser-safe and pure: (capture, method, path, query) → response.
 * The local server (`vlm-attention view`) answers HTTP with it, and the self-contained HTML page
 * calls it in-page, so both deliveries run the same code and give the same errors.
 *
 *   GET /api/info                          capture info + what is available (rollout, flow, heads)
 *   GET /api/map?tokens=5,7&layers=all&heads=0,2&mode=raw|rollout|flow    token → patch-grid map
 *   GET /api/patch?patch=12&layers=…&heads=…&mode=…                       patch → text tokens
 *   GET /api/heads                         head importance [numLayers·numHeads] and its method
 *   GET /api/image                         the capture's PNG
 *
 * `tokens` names sequence positions (integers and a-b ranges), each at most once: unlike `layers` and `heads` it
 * has no 'all', and a repeated token is refused as a repeated layer is (the library's tokenMap would count it
 * twice in the mean, which no viewer selection means).
 *
 * Bad parameters (token index out of range, unknown layer or head, malformed numbers, a rollout the
 * capture cannot support) answer 400 with `{ error, message, argument?, dimension? }`; unknown paths
 * 404; other methods 405 with an `Allow` header. HEAD is answered where it costs nothing (info, heads, image);
 * on /api/map and /api/patch it would compute the whole map to throw it away, so it is 405 there. Nothing here
 * throws.
 */
import { ShapeError, UnsupportedError, ValueError, VlmAttentionError } from '../errors.js';
import type { Capture } from './capture-file.js';
import { discoverHeads, headScores64 } from './heads.js';
import { type MapMode, MAP_MODES, patchMap, tokenMap } from './maps.js';
import { parseIndexList } from './index-list.js';
import { flowWork } from './rollout.js';

/** One answer of handleApi, ready to send as an HTTP response. */
export interface ApiResponse {
  /** HTTP status: 200, 400 (bad parameter), 404, 405, 422 (unsupported by this capture) or 500. */
  status: number;
  /** MIME type of the body: JSON, or 'image/png' for /api/image. */
  contentType: string;
  /** A JSON string, or the PNG bytes. */
  body: string | Uint8Array;
  /** Extra response headers (e.g. `Allow` on a 405). */
  headers?: Record<string, string>;
}

/** Work limit of rollout (multiply-adds) and flow (edge visits) requests: keeps one request under a few seconds. */
export const API_FLOW_MAX_WORK = 5e8;

function json(status: number, value: unknown): ApiResponse {
  return { status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(value) };
}

/** A typed error as a 4xx JSON body. */
export function errorResponse(e: unknown): ApiResponse {
  if (e instanceof VlmAttentionError) {
    const x = e as VlmAttentionError & { argument?: string; dimension?: string };
    return json(e instanceof UnsupportedError ? 422 : 400, { error: e.name, message: e.message, ...(x.argument ? { argument: x.argument } : {}), ...(x.dimension ? { dimension: x.dimension } : {}) });
  }
  return json(500, { error: 'InternalError', message: e instanceof Error ? e.message : String(e) });
}

/** The methods each endpoint answers (the `Allow` header of its 405). */
const ALLOWED: Record<string, string> = { '/api/info': 'GET, HEAD', '/api/heads': 'GET, HEAD', '/api/image': 'GET, HEAD', '/api/map': 'GET', '/api/patch': 'GET' };

function notAllowed(method: string, pathname: string, allow: string): ApiResponse {
  return { ...json(405, { error: 'MethodNotAllowed', message: `${method} is not allowed on ${pathname} (allowed: ${allow})` }), headers: { Allow: allow } };
}

const TOKENS_FORM = 'comma-separated sequence positions and a-b ranges, each at most once, e.g. tokens=5,7';

/**
 * The `tokens` parameter: positions as parseIndexList reads them, but no 'all' (the map of every position is not a
 * selection the viewer offers) and no position twice. Missing, 'all' and malformed lists get one message.
 */
function tokensOf(text: string | null, seqLen: number): number[] {
  if (text === null || text.trim() === '') throw new ShapeError(`tokens is required: ${TOKENS_FORM}`, 'tokens', 'seqLen');
  if (text.trim() === 'all') throw new ShapeError(`tokens must be ${TOKENS_FORM}; got "all"`, 'tokens', 'seqLen');
  let list: number[] | undefined;
  try {
    list = parseIndexList(text, 'tokens', 'seqLen', seqLen);
  } catch (e) {
    // The shared parser's "must be 'all' or …" would offer what tokens does not take.
    if (e instanceof ShapeError && /must be 'all' or/.test(e.message)) throw new ShapeError(`tokens must be ${TOKENS_FORM}; got ${JSON.stringify(text.slice(0, 80))}`, 'tokens', 'seqLen');
    throw e;
  }
  const seen = new Set<number>();
  for (const t of list!) {
    if (seen.has(t)) throw new ShapeError(`tokens contains ${t} twice; each position may be listed once`, 'tokens', 'seqLen');
    seen.add(t);
  }
  return list!;
}

function modeOf(v: string | null): MapMode {
  const m = (v ?? 'raw') as MapMode;
  if (!MAP_MODES.includes(m)) throw new ValueError(`mode must be one of ${MAP_MODES.join(', ')}, got ${JSON.stringify(v)}`, 'mode');
  return m;
}

/** What the capture supports, for the page's controls. */
export function captureAvailability(c: Capture): { rollout: boolean; flow: boolean; patchFlow: boolean; rolloutHeadSubsets: boolean; storedHeadImportance: boolean } {
  const { queryPositions, seqLen, numLayers, textPositions } = c.info;
  const full = queryPositions.length === seqLen;
  const flowSource = full || !!c.layerMeans;
  return {
    rollout: full || !!c.layerMeans || !!c.rollout,
    // flow: a token's map (one flow row); patchFlow: a patch's (a flow row for every text token), within the work limit.
    flow: flowSource && flowWork(1, seqLen, numLayers) <= API_FLOW_MAX_WORK,
    patchFlow: flowSource && flowWork(Math.max(1, textPositions.length), seqLen, numLayers) <= API_FLOW_MAX_WORK,
    rolloutHeadSubsets: full,
    storedHeadImportance: !!c.headImportance,
  };
}

const headCache = new WeakMap<Capture, { scores: number[]; method: string; description: string }>();

/**
 * Head importance: the capture's own, or (computed once) the image-attention mass of its text tokens, in float64
 * (a capture of huge but finite attention values overflowed float32 scores to Infinity, which JSON sends as null).
 */
export function headImportanceOf(c: Capture): { scores: number[]; method: string; description: string } {
  if (c.headImportance) return { scores: Array.from(c.headImportance), method: c.info.headImportance?.method ?? 'unspecified', description: c.info.headImportance?.description ?? 'stored in the capture' };
  let v = headCache.get(c);
  if (!v) {
    if (c.info.textPositions.length === 0) v = { scores: new Array(c.info.numLayers * c.info.numHeads).fill(0), method: 'none', description: 'the capture has no text positions' };
    else {
      const d = discoverHeads([{ capture: c }], { method: 'activation' });
      v = { scores: Array.from(headScores64(d)), method: 'activation', description: 'mean attention mass from the text tokens to the image (this capture)' };
    }
    headCache.set(c, v);
  }
  return v;
}

/**
 * Answers one viewer request. Never throws. `opts.generation` (the local server's opaque name of its current capture) is
 * reported by /api/info, so that a page can tell when the capture it shows has been replaced.
 */
export function handleApi(c: Capture, method: string, pathname: string, query: URLSearchParams, opts: { generation?: string } = {}): ApiResponse {
  try {
    const allow = ALLOWED[pathname];
    if (allow === undefined) return json(404, { error: 'NotFound', message: `no such endpoint: ${pathname}` });
    if (!allow.split(', ').includes(method)) return notAllowed(method, pathname, allow);
    switch (pathname) {
      case '/api/info':
        return json(200, { info: c.info, available: captureAvailability(c), ...(opts.generation !== undefined ? { generation: opts.generation } : {}) });
      case '/api/map': {
        // Single positions are checked against the sequence by tokenMap, which names the position and the length.
        const tokens = tokensOf(query.get('tokens'), c.info.seqLen);
        const m = tokenMap(c, tokens, {
          layers: parseIndexList(query.get('layers'), 'layers', 'numLayers', c.info.numLayers), heads: parseIndexList(query.get('heads'), 'heads', 'numHeads', c.info.numHeads),
          mode: modeOf(query.get('mode')), maxWork: API_FLOW_MAX_WORK,
        });
        return json(200, { ...m, values: Array.from(m.values) });
      }
      case '/api/patch': {
        const text = query.get('patch') ?? '';
        if (!/^\s*-?\d+\s*$/.test(text)) throw new ShapeError(`patch must be one integer (row-major index into the grid), got ${JSON.stringify(text.slice(0, 80))}`, 'patch', 'grid');
        const p = [Number(text)];
        const m = patchMap(c, p[0]!, {
          layers: parseIndexList(query.get('layers'), 'layers', 'numLayers', c.info.numLayers), heads: parseIndexList(query.get('heads'), 'heads', 'numHeads', c.info.numHeads),
          mode: modeOf(query.get('mode')), maxWork: API_FLOW_MAX_WORK,
        });
        return json(200, { ...m, values: Array.from(m.values) });
      }
      case '/api/heads':
        return json(200, { numLayers: c.info.numLayers, numHeads: c.info.numHeads, ...headImportanceOf(c) });
      case '/api/image':
        if (!c.imagePng) return json(404, { error: 'NotFound', message: 'this capture has no image' });
        return { status: 200, contentType: 'image/png', body: c.imagePng };
      default:
        return json(404, { error: 'NotFound', message: `no such endpoint: ${pathname}` });
    }
  } catch (e) {
    return errorResponse(e);
  }
}

/** Whether `pathname` is one of the endpoints handleApi answers (anything else under /api/ is 404). */
export function isApiPath(pathname: string): boolean {
  return Object.hasOwn(ALLOWED, pathname);
}
