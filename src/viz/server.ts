/**
 * The viewer's local HTTP server (Node-only): binds 127.0.0.1 only, serves the bundled page at `/`
 * and answers `/api/*` through `handleApi`. `POST /api/capture` (body: a capture file) replaces the
 * capture being viewed; a corrupt upload (its image included: decoded whole) answers 400 and keeps the old one.
 *
 * Captures are numbered: every answer carries `X-Capture-Generation: <id>-<n>` (also `generation` in /api/info and
 * in the upload's answer, as a string), n counting the captures loaded and <id> random per server process, so that
 * a tab left open on a server restarted on the same port cannot mistake the new capture 1 for its old capture 1. The
 * value is opaque to clients: only equality means anything. A request that sends `X-Capture-Generation` for another
 * capture than the current one gets 409 `CaptureChanged` instead of an answer computed on the new capture: a tab
 * opened before another tab's upload would otherwise label the new capture's maps with the old tokens.
 *
 * It never crashes on input: every handler error becomes a 4xx/5xx JSON answer, oversize bodies 413
 * (answered at once, the rest of the body drained, the connection then closed), request heads past Node's
 * header limit (a long URL) 431, requests whose Host is not 127.0.0.1/localhost (at its port; without one on
 * port 80, as clients send it there) get 403 (DNS-rebinding guard), and so do uploads from another origin (an
 * `Origin` that is not this server's, or `Sec-Fetch-Site: cross-site`): any web page could otherwise POST a
 * capture of its own choosing into the viewer with a simple cross-site request. Every 405 names the allowed
 * methods in `Allow`.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ValueError } from '../errors.js';
import { type ApiResponse, errorResponse, handleApi, isApiPath } from './api.js';
import { type Capture, decodeCapture } from './capture-file.js';
import { loadViewerHtml } from './viewer-html.js';

/** Options of startViewerServer. */
export interface ViewerServerOptions {
  /** Port (default 0: any free port). */
  port?: number;
  /** The page to serve (default: the bundled viewer). */
  html?: string;
  /** Largest accepted upload (default 512 MiB). */
  maxUploadBytes?: number;
  /** Called for each request with its status (logging). */
  onRequest?: (method: string, url: string, status: number) => void;
}

/** A running viewer server (startViewerServer). */
export interface ViewerServer {
  /** The page's address, `http://127.0.0.1:<port>/`. */
  url: string;
  /** The port it listens on (the one picked when port 0 was asked for). */
  port: number;
  /** The underlying Node HTTP server. */
  server: Server;
  /** The capture currently viewed (replaced by a successful POST /api/capture). */
  readonly capture: Capture;
  /**
   * Which capture that is, opaque: `<id>-<n>`, <id> random per server process, n 1 for the capture started with
   * and one more after each successful upload.
   */
  readonly generation: string;
  /** Closes open connections and stops listening; resolves once the server is closed. */
  close(): Promise<void>;
}

/** The only address the viewer server binds to; requests whose Host is neither it nor localhost get 403. */
export const VIEWER_HOST = '127.0.0.1';

/** The header naming the capture an answer belongs to, and (sent by the page) the one a request is for. */
export const GENERATION_HEADER = 'X-Capture-Generation';

function send(res: ServerResponse, r: ApiResponse, head = false): void {
  const body = typeof r.body === 'string' ? Buffer.from(r.body, 'utf8') : Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength);
  res.writeHead(r.status, {
    ...r.headers,
    'Content-Type': r.contentType,
    'Content-Length': body.length,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'",
  });
  res.end(head ? undefined : body);
}

/** Bytes of an oversize body read and dropped after its 413 (so the client sees the answer, not a reset); past them the connection is cut. */
const DRAIN_BYTES = 64 * 2 ** 20;

/**
 * The request body, at most `limit` bytes. An oversize one rejects at once (status 413) and the rest is read
 * and dropped, up to DRAIN_BYTES more: closing a socket with unread data resets it, and the client would see
 * "connection reset" instead of the 413.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const tooBig = (what: string) => Object.assign(new ValueError(`${what} exceeds the ${limit}-byte limit`, 'body'), { status: 413 });
    const declared = Number(req.headers['content-length']);
    const chunks: Buffer[] = [];
    let n = 0, over = false;
    const overflow = (e: Error) => {
      over = true;
      chunks.length = 0;
      reject(e);
    };
    if (Number.isFinite(declared) && declared > limit) overflow(tooBig(`upload of ${declared} bytes`));
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (over) { if (n > limit + DRAIN_BYTES) req.destroy(); return; }
      if (n > limit) { overflow(tooBig('upload')); return; }
      chunks.push(c);
    });
    req.on('end', () => { if (!over) resolve(new Uint8Array(Buffer.concat(chunks))); });
    req.on('error', reject);
  });
}

/**
 * The Host values this server answers to: 127.0.0.1 or localhost at its port, and on port 80 also without one
 * (clients leave the scheme's default port out of Host and Origin, so on port 80 every request was refused).
 */
function ownHosts(port: number): string[] {
  return [`${VIEWER_HOST}:${port}`, `localhost:${port}`, ...(port === 80 ? [VIEWER_HOST, 'localhost'] : [])];
}

/** Whether a request's Host header (any case) names the viewer server listening on `port`. */
export function isOwnHost(host: string | undefined, port: number): boolean {
  return ownHosts(port).includes((host ?? '').toLowerCase());
}

function jsonAnswer(status: number, error: string, message: string, extra: Record<string, unknown> = {}): ApiResponse {
  return { status, contentType: 'application/json', body: JSON.stringify({ error, message, ...extra }) };
}

/**
 * The request's path: `//api/info` is `/api/info` (a URL parsed against a base read a leading `//` as a host name,
 * which gave "no such endpoint: /info"). Absolute-form targets (`http://host/path`) keep their path.
 */
function requestPath(raw: string, port: number): URL {
  const url = raw.startsWith('/') ? new URL(`http://${VIEWER_HOST}:${port}${raw}`) : new URL(raw, `http://${VIEWER_HOST}:${port}`);
  url.pathname = url.pathname.replace(/\/{2,}/g, '/');
  return url;
}

/** Whether a state-changing request comes from another origin than this server's page (403). */
function crossOrigin(req: IncomingMessage, port: number): boolean {
  const origin = req.headers.origin;
  if (origin !== undefined && !ownHosts(port).some((h) => origin.toLowerCase() === `http://${h}`)) return true;
  return req.headers['sec-fetch-site'] === 'cross-site';
}

/** Starts the viewer server on 127.0.0.1. */
export async function startViewerServer(capture: Capture, opts: ViewerServerOptions = {}): Promise<ViewerServer> {
  const html = opts.html ?? loadViewerHtml();
  const limit = opts.maxUploadBytes ?? 512 * 1024 * 1024;
  let current = capture;
  // Random per process: a restarted server's captures must not reuse the numbers an open tab holds.
  const serverId = randomBytes(4).toString('hex');
  let count = 1;
  const generationOf = () => `${serverId}-${count}`;
  let port = 0;
  const server = createServer(async (req, res) => {
    const method = req.method ?? 'GET';
    let status = 500;
    // Every answer names the capture it belongs to (the page compares it with the one it loaded).
    const answer = (r: ApiResponse, head = false) => { status = r.status; send(res, { ...r, headers: { ...r.headers, [GENERATION_HEADER]: generationOf() } }, head); };
    try {
      if (!isOwnHost(req.headers.host, port)) {
        answer(jsonAnswer(403, 'Forbidden', `Host ${JSON.stringify((req.headers.host ?? '').toLowerCase())} is not this local viewer`));
        return;
      }
      const url = requestPath(req.url ?? '/', port);
      if (url.pathname === '/' || url.pathname === '/index.html') {
        if (method === 'GET' || method === 'HEAD') answer({ status: 200, contentType: 'text/html; charset=utf-8', body: html }, method === 'HEAD');
        else answer({ ...jsonAnswer(405, 'MethodNotAllowed', `${method} is not allowed on ${url.pathname} (allowed: GET, HEAD)`), headers: { Allow: 'GET, HEAD' } });
        return;
      }
      if (url.pathname === '/api/capture') {
        if (method !== 'POST') {
          answer({ ...jsonAnswer(405, 'MethodNotAllowed', `${method} is not allowed on /api/capture (allowed: POST, with a capture file as the body)`), headers: { Allow: 'POST' } });
          return;
        }
        if (crossOrigin(req, port)) {
          res.setHeader('Connection', 'close');
          answer(jsonAnswer(403, 'Forbidden', `uploads come from this viewer's own page, not from origin ${JSON.stringify(req.headers.origin ?? req.headers['sec-fetch-site'])}`));
          return;
        }
        try {
          const bytes = await readBody(req, limit);
          current = decodeCapture(bytes, { path: 'upload' });
          count++;
          answer({ status: 200, contentType: 'application/json', body: JSON.stringify({ ok: true, info: current.info, generation: generationOf() }) });
        } catch (e) {
          const r = errorResponse(e);
          const st = (e as { status?: number }).status ?? r.status;
          if (st === 413) res.setHeader('Connection', 'close');
          answer({ ...r, status: st });
        }
        return;
      }
      if (url.pathname === '/favicon.ico') { status = 204; res.writeHead(204, { [GENERATION_HEADER]: generationOf() }); res.end(); return; }
      // A request for a capture other than the current one (a tab opened before another tab's upload) is refused
      // rather than answered with the new capture's numbers under the old capture's tokens. An unknown path is 404
      // whatever capture it names: no capture could answer it.
      const asked = req.headers[GENERATION_HEADER.toLowerCase()];
      const generation = generationOf();
      if (typeof asked === 'string' && isApiPath(url.pathname) && asked.trim() !== generation) {
        answer(jsonAnswer(409, 'CaptureChanged', `the capture was replaced (now capture ${generation}; this request was for capture ${JSON.stringify(asked.trim())}): reload /api/info`, { generation }));
        return;
      }
      answer(handleApi(current, method, url.pathname, url.searchParams, { generation }), method === 'HEAD');
    } catch (e) {
      const r = errorResponse(e);
      status = r.status;
      if (!res.headersSent) answer(r); else res.destroy();
    } finally {
      opts.onRequest?.(method, req.url ?? '', status);
    }
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) { socket.destroy(); return; }
    // A request head past Node's limit (16 KiB: in practice a long URL) is 431, as HTTP names it, not a bare 400.
    const [code, text, message] = err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'the request line and headers exceed the server\'s limit; shorten the URL']
      : [400, 'Bad Request', 'malformed HTTP request'];
    const body = JSON.stringify({ error: code === 431 ? 'RequestTooLarge' : 'BadRequest', message });
    socket.end(`HTTP/1.1 ${code} ${text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, VIEWER_HOST, () => { server.off('error', reject); resolve(); });
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://${VIEWER_HOST}:${port}/`, port, server,
    get capture() { return current; },
    get generation() { return generationOf(); },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}
