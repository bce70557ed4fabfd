/**
 * The README's API tour must run: every ```js block is executed (as the examples/ copies, against the
 * built package). Keeps the documentation honest.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const readme = readFileSync('README.md', 'utf8');
const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);

describe('README examples', () => {
  it('examples/ holds exactly the README blocks', () => {
    const files = readdirSync('examples').filter((f) => f.endsWith('.mjs')).sort();
    const bodies = files.map((f) => readFileSync(`examples/${f}`, 'utf8').split('\n').slice(1).join('\n').replaceAll("'../dist/index.js'", "'vlm-attention'"));
    for (const b of blocks) expect(bodies).toContain(b);
    expect(files.length).toBe(blocks.length);
  });
  // The set-up command's `npx vlm-attention` in a fresh checkout runs the bin file itself (through its
  // shebang): the build must leave it executable.
  it('the built bin runs as a program', () => {
    const bin = JSON.parse(readFileSync('package.json', 'utf8')).bin['vlm-attention'] as string;
    const out = execFileSync(bin, ['--help'], { encoding: 'utf8', timeout: 60_000 });
    expect(out).toMatch(/demo/);
  }, 90_000);
  for (const f of readdirSync('examples').filter((x) => x.endsWith('.mjs'))) {
    it(`runs examples/${f}`, () => {
      execFileSync(process.execPath, [`examples/${f}`], { stdio: 'pipe', timeout: 120_000 });
    }, 150_000);
  }
});
