// The command registry: one line per command. Each command lives in its own file here.
import type { Command } from '../command.js';

export const COMMANDS: Record<string, () => Promise<Command>> = {
  attention: async () => (await import('./attention.js')).default,
  demo: async () => (await import('./demo.js')).default,
  run: async () => (await import('./run.js')).default,
  cost: async () => (await import('./cost.js')).default,
  viz: async () => (await import('./viz.js')).default,
  view: async () => (await import('./view.js')).default,
  'cache-stats': async () => (await import('./cache-stats.js')).default,
};
