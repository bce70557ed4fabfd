/**
 * The viewer's local HTTP server (Node-only): binds 127.0.0.1 only, serves the bundled page at `/`
 * and answers `/api/*` through `handleApi`. `POST /api/capture` (body: a capture file) replaces the
 * capture being viewed; a corrupt upload answers 400 and keeps the old one.
 *
 * It never crashes on input: every handler error becomes a 4xx/5xx JSON answer, oversize bodies 413
 * (answered at once, the rest of the body drained, the connection then closed), requests whose Host is not
 * 127.0.0.1/localhost get 403 (DNS-rebinding guard), and so do uploads from another origin (an `Origin` that is
 * not this server's, or `Sec-Fetch-Site: cross-site`): any web page could otherwise POST a capture of its own
 * choosing into the viewer with a simple cross-site request.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ValueError } from '../errors.js';
import { type ApiResponse, errorResponse, handleApi } from './api.js';
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
  /** Closes open connections and stops listening; resolves once the server is closed. */
  close(): Promise<void>;
}

/** The only address the viewer server binds to; requests whose Host is neither it nor localhost get 403. */
export const VIEWER_HOST = '127.0.0.1';

function send(res: ServerResponse, r: ApiResponse, head = false): void {
  const body = typeof r.body === 'string' ? Buffer.from(r.body, 'utf8') : Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength);
  res.writeHead(r.status, {
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

/** The Host values this server answers to (127.0.0.1 or localhost at its port). */
function ownHosts(port: number): string[] {
  return [`${VIEWER_HOST}:${port}`, `localhost:${port}`];
}

/** Whether a state-changing request comes from another origin than this server's page (403). */
function crossOrigin(req: IncomingMessage, port: number): boolean {
  const origin = req.headers.origin;
  if (origin !== undefined && !ownHosts(port).some((h) => origin === `http://${h}`)) return true;
  return req.headers['sec-fetch-site'] === 'cross-site';
}

/** Starts the viewer server on 127.0.0.1. */
export async function startViewerServer(capture: Capture, opts: ViewerServerOptions = {}): Promise<ViewerServer> {
  const html = opts.html ?? loadViewerHtml();
  const limit = opts.maxUploadBytes ?? 512 * 1024 * 1024;
  let current = capture;
  let port = 0;
  const server = createServer(async (req, res) => {
    const method = req.method ?? 'GET';
    let status = 500;
    try {
      const host = (req.headers.host ?? '').toLowerCase();
      if (!ownHosts(port).includes(host)) {
        status = 403;
        send(res, { status, contentType: 'application/json', body: JSON.stringify({ error: 'Forbidden', message: `Host ${JSON.stringify(host)} is not this local viewer` }) });
        return;
      }
      const url = new URL(req.url ?? '/', `http://${VIEWER_HOST}:${port}`);
      if (url.pathname === '/' || url.pathname === '/index.html') {
        status = method === 'GET' || method === 'HEAD' ? 200 : 405;
        send(res, status === 200 ? { status, contentType: 'text/html; charset=utf-8', body: html } : { status, contentType: 'application/json', body: JSON.stringify({ error: 'MethodNotAllowed', message: `${method} /` }) }, method === 'HEAD');
        return;
      }
      if (url.pathname === '/api/capture' && method === 'POST') {
        if (crossOrigin(req, port)) {
          status = 403;
          res.setHeader('Connection', 'close');
          send(res, { status, contentType: 'application/json', body: JSON.stringify({ error: 'Forbidden', message: `uploads come from this viewer's own page, not from origin ${JSON.stringify(req.headers.origin ?? req.headers['sec-fetch-site'])}` }) });
          return;
        }
        try {
          const bytes = await readBody(req, limit);
          current = decodeCapture(bytes, { path: 'upload' });
          status = 200;
          send(res, { status, contentType: 'application/json', body: JSON.stringify({ ok: true, info: current.info }) });
        } catch (e) {
          const r = errorResponse(e);
          status = (e as { status?: number }).status ?? r.status;
          if (status === 413) res.setHeader('Connection', 'close');
          send(res, { ...r, status });
        }
        return;
      }
      if (url.pathname === '/favicon.ico') { status = 204; res.writeHead(204); res.end(); return; }
      const r = handleApi(current, method, url.pathname, url.searchParams);
      status = r.status;
      send(res, r, method === 'HEAD');
    } catch (e) {
      const r = errorResponse(e);
      status = r.status;
      if (!res.headersSent) send(res, r); else res.destroy();
    } finally {
      opts.onRequest?.(method, req.url ?? '', status);
    }
  });
  server.on('clientError', (_err, socket) => { if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'); else socket.destroy(); });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, VIEWER_HOST, () => { server.off('error', reject); resolve(); });
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://${VIEWER_HOST}:${port}/`, port, server,
    get capture() { return current; },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}
