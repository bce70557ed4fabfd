/**
 * The API reference stays complete: every public export (src/index.ts, src/node.ts) carries a doc comment, so do
 * the members of the types a user meets first, and TypeDoc (`npm run docs`) finds every type the public API names
 * exported and every {@link} resolvable.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ENTRIES = ['src/index.ts', 'src/node.ts'];
/** Types whose every public member must be documented (options and results of the main calls). */
const FULLY_DOCUMENTED = [
  'AttentionOptions', 'RunOptions', 'AttentionResult', 'VarlenOptions', 'Tensor', 'TensorInit', 'ReferenceOptions',
  'CaptureOptions', 'CpuConfig', 'KernelStats', 'GpuTensor', 'PagedKvCache', 'CostOptions', 'AttentionCost', 'RelevanceOptions',
];

function program() {
  const config = ts.getParsedCommandLineOfConfigFile('tsconfig.json', {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!;
  const prog = ts.createProgram(ENTRIES, config.options);
  return { prog, checker: prog.getTypeChecker() };
}

describe('API documentation', () => {
  const { prog, checker } = program();
  const exported = new Map<string, ts.Symbol>();
  for (const f of ENTRIES) {
    for (const sym of checker.getExportsOfModule(checker.getSymbolAtLocation(prog.getSourceFile(f)!)!)) {
      exported.set(sym.name, sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym);
    }
  }
  const doc = (s: ts.Symbol) => ts.displayPartsToString(s.getDocumentationComment(checker)).trim();

  it('every public export has a doc comment', () => {
    expect(exported.size).toBeGreaterThan(400);
    const missing = [...exported].filter(([, s]) => !doc(s)).map(([name, s]) => `${name} (${s.declarations?.[0]?.getSourceFile().fileName.replace(/.*\/src\//, 'src/')})`);
    expect(missing).toEqual([]);
  });

  it('the main option and result types document every public member', () => {
    const missing: string[] = [];
    for (const name of FULLY_DOCUMENTED) {
      const sym = exported.get(name);
      expect(sym, name).toBeDefined();
      for (const [member, m] of sym!.members ?? new Map<ts.__String, ts.Symbol>()) {
        const decl = m.declarations?.[0];
        if (!decl || member === '__constructor' || String(member).startsWith('__')) continue;
        if (ts.getCombinedModifierFlags(decl as ts.Declaration) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
        if (ts.isPropertyDeclaration(decl) && ts.isPrivateIdentifier(decl.name)) continue;
        if (!doc(m)) missing.push(`${name}.${String(member)}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('TypeDoc builds the reference with every named type exported and every link resolved', () => {
    const out = mkdtempSync(join(tmpdir(), 'vlm-attention-api-'));
    try {
      const log = execFileSync(process.execPath, ['node_modules/typedoc/bin/typedoc', '--out', out, '--treatValidationWarningsAsErrors', '--logLevel', 'Warn'], { encoding: 'utf8', stdio: 'pipe', timeout: 180_000 });
      expect(log).not.toMatch(/\[error\]/);
    } catch (e) {
      throw new Error(`typedoc failed:\n${(e as { stdout?: string }).stdout ?? ''}${(e as { stderr?: string }).stderr ?? e}`);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 240_000);
});
