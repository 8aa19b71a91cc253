// Imports only point down: every relative import of every src/**/*.ts (static `import` and
// `export ... from`, `import type`, and the `require('...')` and `import('...')` calls used
// for lazy loading) goes to a package of a lower layer, or stays inside its own package.
//
//   server -> cli -> daemon -> image -> runtime -> linux | cgroups | network -> spec -> host -> native -> errors
//
// linux and cgroups are siblings: neither imports the other (the plan mounts what the host
// package reports about cgroups, the managers never see a plan). errors.ts is the leaf every
// layer may throw from; host imports nothing of husk's but native and errors.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(__dirname, '../../src');

/** Each package's layer: a package may import only packages of a lower layer. */
const LAYER: Record<string, number> = {
  server: 9,
  cli: 8,
  daemon: 7,
  image: 6,
  runtime: 5,
  linux: 4,
  cgroups: 4,
  network: 4,
  spec: 3,
  host: 2,
  native: 1,
  errors: 0,
};

interface Import {
  file: string;
  line: number;
  spec: string;
  target: string;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out.sort();
}

/** The text with comments blanked out (newlines kept, so line numbers stay right). */
function withoutComments(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' '))
    .replace(/^(\s*)\/\/.*$/gm, '$1');
}

const IMPORT_PATTERNS = [
  /\b(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/g,
  /\brequire\(\s*['"]([^'"]+)['"]\s*\)/g,
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
];

function resolve(from: string, spec: string): string | undefined {
  const base = path.resolve(path.dirname(from), spec);
  return [`${base}.ts`, path.join(base, 'index.ts'), base].find((p) => fs.existsSync(p) && fs.statSync(p).isFile());
}

function importsOf(file: string, source = fs.readFileSync(file, 'utf8')): Import[] {
  const text = withoutComments(source);
  const out: Import[] = [];
  for (const re of IMPORT_PATTERNS) {
    for (const m of text.matchAll(re)) {
      const spec = m[1];
      if (!spec.startsWith('.')) continue;
      const line = text.slice(0, m.index).split('\n').length;
      out.push({ file, line, spec, target: resolve(file, spec) ?? '' });
    }
  }
  return out;
}

/** src/cli/main.ts -> cli; src/errors.ts -> errors; outside src (package.json) -> undefined. */
function packageOf(file: string): string | undefined {
  const rel = path.relative(SRC, file);
  if (rel.startsWith('..')) return undefined;
  const parts = rel.split(path.sep);
  return parts.length === 1 ? parts[0].replace(/\.ts$/, '') : parts[0];
}

const where = (i: Import) => `${path.relative(path.dirname(SRC), i.file)}:${i.line} imports '${i.spec}'`;

/** Every import that breaks the layer order, as "file:line imports 'spec' (why)". */
function layerViolations(): string[] {
  const problems: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = packageOf(file)!;
    if (LAYER[from] === undefined) {
      problems.push(`${path.relative(path.dirname(SRC), file)}: package "${from}" has no place in the layer order`);
      continue;
    }
    for (const i of importsOf(file)) {
      if (!i.target) {
        problems.push(`${where(i)}: no such file`);
        continue;
      }
      const to = packageOf(i.target);
      if (to === undefined || to === from) continue;
      if (LAYER[to] === undefined) problems.push(`${where(i)}: package "${to}" has no place in the layer order`);
      else if (LAYER[to] > LAYER[from]) problems.push(`${where(i)}: ${from} may not import ${to}, a higher layer`);
      else if (LAYER[to] === LAYER[from]) problems.push(`${where(i)}: ${from} may not import ${to}, its sibling`);
    }
  }
  return problems;
}

/** Cycles between packages, each as "a -> b -> a (file:line imports 'spec', ...)". */
function packageCycles(): string[] {
  const edges = new Map<string, Map<string, Import>>();
  for (const file of sourceFiles(SRC)) {
    const from = packageOf(file)!;
    for (const i of importsOf(file)) {
      const to = i.target ? packageOf(i.target) : undefined;
      if (to === undefined || to === from) continue;
      if (!edges.has(from)) edges.set(from, new Map());
      if (!edges.get(from)!.has(to)) edges.get(from)!.set(to, i);
    }
  }
  const cycles = new Set<string>();
  const visit = (pkg: string, stack: string[]) => {
    const at = stack.indexOf(pkg);
    if (at >= 0) {
      // One report per cycle, whichever package the search started from.
      const ring = stack.slice(at);
      const first = ring.indexOf([...ring].sort()[0]);
      const loop = [...ring.slice(first), ...ring.slice(0, first), ring[first]];
      const how = loop.slice(0, -1).map((p, k) => where(edges.get(p)!.get(loop[k + 1])!));
      cycles.add(`${loop.join(' -> ')} (${how.join(', ')})`);
      return;
    }
    for (const next of edges.get(pkg)?.keys() ?? []) visit(next, [...stack, pkg]);
  };
  for (const pkg of edges.keys()) visit(pkg, []);
  return [...cycles];
}

describe('layers', () => {
  it('every import points down the layer order', () => {
    expect(layerViolations()).toEqual([]);
  });
  it('no two packages import each other, directly or through others', () => {
    expect(packageCycles()).toEqual([]);
  });
  it('sees static imports, type imports, re-exports and lazy require() and import() calls', () => {
    const source = [
      "import * as fs from 'fs';",
      "import { a,",
      "  b } from '../runtime/store';",
      "import type { T } from '../spec/types';",
      "export { c } from './c';",
      "// import { old } from '../image/old';",
      "/* require('../cli/x') */",
      "const lazy = () => require('../cgroups') as typeof import('../cgroups');",
      "await import('./foreground');",
    ].join('\n');
    const found = importsOf(path.join(SRC, 'linux', 'example.ts'), source).map((i) => `${i.line} ${i.spec}`);
    expect(found.sort()).toEqual(['2 ../runtime/store', '4 ../spec/types', '5 ./c', '8 ../cgroups', '8 ../cgroups', '9 ./foreground'].sort());
  });
});
