// The plan's steps are described twice, once per language: STEP_LAYOUT in src/native/steps.ts
// (TypeScript's types come from it) and HUSK_STEP_FIELDS in native/plan.h (the child's
// accessors come from it), with addon.cc's table of op names between them. They must agree:
// a field laid out in slot `a` on one side and read from `b` on the other would go unnoticed
// by both compilers.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { STEP_LAYOUT, plainStep } from '../../src/native/steps';

const NATIVE = path.resolve(__dirname, '..', '..', 'native');

/** plan.h's F(op, field, member) lines, as "op.field -> member". */
function cppFields(): string[] {
  const header = fs.readFileSync(path.join(NATIVE, 'plan.h'), 'utf8');
  const start = header.indexOf('#define HUSK_STEP_FIELDS(F)');
  expect(start).toBeGreaterThan(0);
  const table = header.slice(start, header.indexOf('\n\n', start));
  return [...table.matchAll(/F\((\w+), (\w+), (\w+)\)/g)].map(([, op, field, member]) => `${op}.${field} -> ${member}`);
}

function tsFields(): string[] {
  return Object.entries(STEP_LAYOUT).flatMap(([op, fields]) =>
    Object.entries(fields as Record<string, string>).map(([field, slot]) => `${op}.${field} -> ${slot}`),
  );
}

describe('the step layout', () => {
  it('is the same in plan.h and src/native/steps.ts', () => {
    expect(cppFields().sort()).toEqual(tsFields().sort());
  });

  it("names the same ops as addon.cc's table, which maps them onto plan.h's enum", () => {
    const addon = fs.readFileSync(path.join(NATIVE, 'addon.cc'), 'utf8');
    const kOps = addon.slice(addon.indexOf('kOps[] = {'), addon.indexOf('};', addon.indexOf('kOps[] = {')));
    const names = [...kOps.matchAll(/\{"(\w+)", Op::(\w+)\}/g)];
    expect(names.map(([, name]) => name).sort()).toEqual(Object.keys(STEP_LAYOUT).sort());
    for (const [, name, member] of names) expect(member).toBe(name[0].toUpperCase() + name.slice(1));
  });

  it('puts each field of a step in its slot, and nothing else', () => {
    expect(plainStep({ op: 'mknod', path: '/dev/null', mode: 0o20666, major: 1, minor: 3, uid: 0, gid: 5, inRoot: true })).toEqual({
      op: 'mknod',
      path: '/dev/null',
      a: 0o20666,
      b: 1,
      c: 3,
      d: 0,
      e: 5,
      inRoot: true,
      create: undefined,
      okErrno: undefined,
    });
    expect(plainStep({ op: 'mount', source: 'proc', target: '/proc', fstype: 'proc', flags: 14, data: null })).toMatchObject({
      source: 'proc',
      path: '/proc',
      fstype: 'proc',
      flags: 14,
      data: null,
    });
  });
});
