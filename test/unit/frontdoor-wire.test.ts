// The front door's wire is written twice: native/frontdoor.h for the door (C++) and
// src/native/frontdoor.ts for the server (TypeScript). The message numbers, flags, file names
// and the Call header's layout must agree, or a door and a server misread each other.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CALL_HAS_TTY, DoorMsg, FOREGROUND_CONSOLE, FOREGROUND_PIPES, FRONT_DOOR_VERSION, SERVER_LOCK, SERVER_LOG, SERVER_SOCKET, parseCall, strings } from '../../src/native/frontdoor';

const header = fs.readFileSync(path.resolve(__dirname, '..', '..', 'native', 'frontdoor.h'), 'utf8');

function constant(name: string): string {
  const m = new RegExp(`constexpr [^=;]*\\b${name} = ([^;]+);`).exec(header);
  if (!m) throw new Error(`${name} is not in frontdoor.h`);
  return m[1].trim();
}

describe('the front door wire', () => {
  it('numbers the messages as frontdoor.h does', () => {
    const block = header.slice(header.indexOf('enum class DoorMsg'), header.indexOf('};', header.indexOf('enum class DoorMsg')));
    const cpp = Object.fromEntries([...block.matchAll(/(\w+) = (\d+),/g)].map(([, name, n]) => [name, Number(n)]));
    expect(cpp).toEqual(DoorMsg);
  });

  it('has the same version, flags and file names', () => {
    expect(Number(constant('kFrontDoorVersion'))).toBe(FRONT_DOOR_VERSION);
    expect(Number(constant('kCallHasTty'))).toBe(CALL_HAS_TTY);
    expect(Number(constant('kForegroundConsole'))).toBe(FOREGROUND_CONSOLE);
    expect(Number(constant('kForegroundPipes'))).toBe(FOREGROUND_PIPES);
    expect(JSON.parse(constant('kServerSocket'))).toBe(SERVER_SOCKET);
    expect(JSON.parse(constant('kServerLock'))).toBe(SERVER_LOCK);
    expect(JSON.parse(constant('kServerLog'))).toBe(SERVER_LOG);
  });

  it('reads a Call laid out as CallHeader: six 32-bit fields, then cwd, home, argv and env', () => {
    const fields = header.slice(header.indexOf('struct CallHeader'), header.indexOf('};', header.indexOf('struct CallHeader')));
    expect([...fields.matchAll(/(u?int32_t) (\w+);/g)].map(([, , name]) => name)).toEqual(['version', 'pid', 'umask', 'flags', 'argc', 'envc']);
    const head = Buffer.alloc(24);
    [1, 4242, 0o22, CALL_HAS_TTY, 2, 1].forEach((n, i) => head.writeUInt32LE(n, i * 4));
    const call = parseCall(Buffer.concat([head, strings(['/work', '/opt/husk', 'state', 'c1', 'PATH=/bin'])]));
    expect(call).toEqual({ version: 1, pid: 4242, umask: 0o22, flags: CALL_HAS_TTY, cwd: '/work', home: '/opt/husk', argv: ['state', 'c1'], env: ['PATH=/bin'] });
  });

  it('refuses a Call whose strings end early', () => {
    const head = Buffer.alloc(24);
    head.writeUInt32LE(3, 16);
    expect(() => parseCall(Buffer.concat([head, strings(['/', 'a'])]))).toThrow(/NUL/);
  });
});
