import { parseArgs } from 'node:util';
import type { Capture } from '../../viz/capture-file.js';
import { readCapture } from '../../viz/node-files.js';
import { startViewerServer, type ViewerServer } from '../../viz/server.js';
import { syntheticCapture } from '../../viz/synthetic.js';
import { type Command, UsageError, cliNumber, refuseFlags } from '../command.js';

const usage = `vlm-attention view <capture> [--port N] [--json]
vlm-attention view --synthetic [--seed N]

Serves an interactive attention viewer for a capture on http://127.0.0.1:<port>/ (127.0.0.1 only; the
page is bundled, needs no network). Click a text token: its attention over the image. Click the image:
which tokens attend to that patch. Layer and head selectors, raw/rollout/flow, head-importance grid.
<capture>: a capture file, or a directory / capture.json manifest (see docs/interpretability.md).
Stops on Ctrl-C.`;

/** Parses argv, loads the capture and starts the server (the command waits on it; tests call this). */
export async function startView(argv: string[], log: (line: string) => void = (l) => console.log(l)): Promise<ViewerServer> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { port: { type: 'string', default: '0' }, synthetic: { type: 'boolean', default: false }, seed: { type: 'string', default: '1' }, json: { type: 'boolean', default: false } },
  });
  const port = cliNumber(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be an integer in 0..65535, got ${values.port}`);
  let capture: Capture;
  if (values.synthetic) {
    if (positionals.length) throw new UsageError('--synthetic takes no capture path');
    const seed = cliNumber(values.seed);
    if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got ${values.seed}`);
    capture = await syntheticCapture({ seed });
  } else {
    refuseFlags(argv, ['seed'], 'without --synthetic (it seeds the synthetic scene)');
    if (positionals.length !== 1) throw new UsageError(`expected one capture path, got ${positionals.length}`);
    capture = await readCapture(positionals[0]!);
  }
  const server = await startViewerServer(capture, {
    port,
    onRequest: (m, u, s) => { if (s >= 400 && !values.json) process.stderr.write(`${m} ${u} → ${s}\n`); },
  });
  if (values.json) log(JSON.stringify({ url: server.url, port: server.port }));
  else log(`vlm-attention viewer: ${server.url}  (127.0.0.1 only; Ctrl-C to stop)`);
  return server;
}

const command: Command = {
  summary: 'serve an interactive attention viewer for a capture on 127.0.0.1',
  usage,
  async run(argv) {
    const server = await startView(argv);
    await new Promise<void>((resolve) => {
      const stop = () => { process.off('SIGINT', stop); process.off('SIGTERM', stop); void server.close().then(resolve); };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  },
};
export default command;
