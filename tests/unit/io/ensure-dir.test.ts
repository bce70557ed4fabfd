/**
 * ensureDir (mkdir -p for the CLI's and the capture writers' output folders) ends where Node 20's recursive mkdir
 * loops forever at 100% CPU: a parent that refuses creation with ENOENT, as under /proc (`run --out /proc/x` hung).
 */
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureDir } from '../../../src/viz/node-files.js';

describe('ensureDir', () => {
  it('creates missing ancestors, accepts an existing folder, refuses a file', async () => {
    const root = mkdtempSync(join(tmpdir(), 'vlm-ensure-dir-'));
    try {
      const deep = join(root, 'a', 'b', 'c');
      await ensureDir(deep);
      expect(statSync(deep).isDirectory()).toBe(true);
      await ensureDir(deep);
      writeFileSync(join(root, 'file'), 'x');
      await expect(ensureDir(join(root, 'file'))).rejects.toMatchObject({ name: 'ValueError', argument: 'dir', message: expect.stringMatching(/exists and is not a folder/) });
      await expect(ensureDir(join(root, 'file', 'sub'))).rejects.toMatchObject({ code: 'ENOTDIR' });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it.runIf(existsSync('/proc/self'))('fails at once under /proc (recursive mkdir never returned there)', async () => {
    // A hang fails by the test's timeout.
    await expect(ensureDir('/proc/vlm-attention-nope/x')).rejects.toMatchObject({ code: 'ENOENT' });
  }, 10_000);
});
