// docs/walkthrough.md cannot drift from the code: each `$ husk ...` command of the walkthrough is
// run again, and what husk prints (stdout and stderr together, as on a terminal) must be the
// transcript the doc shows under it.
//
// How the doc marks a transcript: a ```console NAME block whose line is `$ husk ARGS` is a
// command; the ```text NAME blocks with the same NAME, anywhere after it, are its output, in
// order (the doc splits one output into several blocks with prose between them; a block starts
// at a phase heading `== ... ==`). Other fenced blocks are not run or compared.
//
// HUSK_DOCS_UPDATE=1 writes what husk prints now into the doc instead of comparing (with the
// learner's paths: /run/husk, /var/lib/husk, the container name `walk`, the repository as
// /root/husk), split at the same phase headings.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, expectNothingLeft, isRunc, newId, REPO, RUNTIME, stateRoot, tempDir, which } from './harness';

afterEach(cleanup);

const DOC = path.join(REPO, 'docs', 'walkthrough.md');
const UPDATE = process.env.HUSK_DOCS_UPDATE === '1';

/** The paths and name the doc shows, which a test run replaces with its own. */
const LEARNER = { root: '/run/husk', store: '/var/lib/husk', name: 'walk', repo: '/root/husk', image: '/tmp/husk-walk/image' };

interface Transcript {
  command: string;
  /** The ```text blocks, each as [start, end) line numbers of its body in the doc. */
  blocks: { start: number; end: number }[];
}

function transcripts(lines: string[]): Transcript[] {
  const out = new Map<string, Transcript>();
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(\w*) *(\S*)$/.exec(lines[i]);
    if (!fence) continue;
    let end = i + 1;
    while (end < lines.length && lines[end] !== '```') end++;
    const [, kind, name] = fence;
    if (kind === 'console' && name && lines[i + 1]?.startsWith('$ husk ')) {
      if (out.has(name)) throw new Error(`docs/walkthrough.md: two commands named ${name}`);
      out.set(name, { command: lines[i + 1].slice(2), blocks: [] });
    } else if (kind === 'text' && name) {
      const t = out.get(name);
      if (!t) throw new Error(`docs/walkthrough.md:${i + 1}: a transcript of ${name} before its command`);
      t.blocks.push({ start: i + 1, end });
    }
    i = end;
  }
  return [...out.values()];
}

/**
 * What truly varies from run to run, made the same on both sides: pids and fd numbers, and
 * digests and sizes (they follow the busybox the host has). The cgroup lines depend on the
 * host (cgroup v1 or v2, and the cgroup husk itself runs in): they are left out, as in
 * test/integration/explain.test.ts. Blank lines are left out too.
 */
function normalise(text: string): string[] {
  return text.split('\n')
    .filter((line) => line.trim() !== '')
    .filter((line) => !line.includes('/sys/fs/cgroup')
      && !/^ {4}husk +the init started inside its cgroup/.test(line)
      && !/^ {2}(A cgroup is|Writing a cgroup's|clone3 with CLONE_INTO_CGROUP|The container's cgroup is removed|On cgroup v2 the device rules)/.test(line))
    .map((line) => line
      .replace(/\b(pid|process|fd) \d+/g, '$1 N')
      .replace(/sha256:[0-9a-f]{64}/g, 'sha256:DIGEST')
      .replace(/\(\d+ bytes\)/g, '(N bytes)'));
}

/** Runs one command of the doc as a learner would, in this test's state root and a fresh store. */
function runDocCommand(command: string, image: string): string {
  const name = newId('walk');
  const root = stateRoot();
  const store = tempDir('store-');
  const words = command.split(' ');
  expect(words[0]).toBe('husk');
  const args = words.slice(1).map((w) => (w === LEARNER.name ? name : w.split(LEARNER.image).join(image)));
  const outFile = path.join(tempDir('out-'), 'out');
  const fd = fs.openSync(outFile, 'w');
  try {
    // One file for stdout and stderr, as `2>&1`: the order the learner's terminal shows.
    const res = spawnSync(RUNTIME, ['--root', root, ...args], {
      stdio: ['ignore', fd, fd], env: { ...process.env, HUSK_STORE: store }, timeout: 120_000, killSignal: 'SIGKILL',
    });
    expect(res.status, `${command}\n${fs.readFileSync(outFile, 'utf8')}`).toBe(0);
  } finally {
    fs.closeSync(fd);
  }
  // The test's own paths back to the learner's.
  return fs.readFileSync(outFile, 'utf8')
    .split(root).join(LEARNER.root)
    .split(store).join(LEARNER.store)
    .split(image).join(LEARNER.image)
    .split(name).join(LEARNER.name)
    .split(name.slice(0, 12)).join(LEARNER.name) // the hostname: the name's first 12 characters, as Docker's
    .split(REPO).join(LEARNER.repo);
}

/** Splits an output at its phase headings, for the doc's blocks. */
function chunks(output: string): string[] {
  const out: string[][] = [[]];
  for (const line of output.replace(/\n+$/, '').split('\n')) {
    if (line.startsWith('== ') && out[out.length - 1].some((l) => l !== '')) out.push([]);
    out[out.length - 1].push(line);
  }
  return out.map((c) => c.join('\n').replace(/^\n+|\n+$/g, ''));
}

describe.skipIf(isRunc)('docs/walkthrough.md', () => {
  const doc = fs.readFileSync(DOC, 'utf8').split('\n');
  const found = transcripts(doc);

  it('marks its commands and their transcripts', () => {
    expect(found.length).toBeGreaterThanOrEqual(2);
    for (const t of found) expect(t.blocks.length, t.command).toBeGreaterThan(0);
  });

  it.skipIf(!which('busybox'))('prints what husk prints now, command by command', async () => {
    // The image the walkthrough runs, made as the learner makes it (in a directory of the test's).
    const image = path.join(tempDir('image-'), 'image');
    const made = spawnSync(path.join(REPO, 'scripts', 'walkthrough-image'), [image], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    const replacements: { start: number; end: number; text: string }[] = [];
    for (const t of found) {
      const output = runDocCommand(t.command, image);
      if (UPDATE) {
        const parts = chunks(output);
        if (parts.length !== t.blocks.length) {
          throw new Error(`${t.command}: the output has ${parts.length} phases, the doc ${t.blocks.length} blocks: split the doc's blocks by hand first`);
        }
        t.blocks.forEach((b, i) => replacements.push({ ...b, text: parts[i] }));
        continue;
      }
      const shown = t.blocks.map((b) => doc.slice(b.start, b.end).join('\n')).join('\n');
      expect(normalise(output), `${t.command}: husk's output differs from docs/walkthrough.md (HUSK_DOCS_UPDATE=1 rewrites it)`)
        .toEqual(normalise(shown));
    }
    if (UPDATE) {
      // Later blocks first, so the line numbers of earlier ones stay right.
      const updated = [...doc];
      for (const r of replacements.sort((a, b) => b.start - a.start)) updated.splice(r.start, r.end - r.start, ...r.text.split('\n'));
      fs.writeFileSync(DOC, updated.join('\n'));
    }
    // Each command ran with --rm: no container, cgroup, mount or process is left.
    await expectNothingLeft();
  });
});
