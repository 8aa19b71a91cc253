// Signal names <-> numbers, accepting what runc accepts: "KILL", "SIGKILL", "9".
import { constants } from 'os';
import { HuskError } from '../errors';

const SIGNALS = constants.signals as Record<string, number>;

export function parseSignal(text: string): number {
  if (/^[0-9]+$/.test(text)) {
    const n = Number(text);
    if (n > 0 && n <= 64) return n;
  } else {
    const upper = text.toUpperCase();
    const name = upper.startsWith('SIG') ? upper : 'SIG' + upper;
    if (name in SIGNALS) return SIGNALS[name];
    const rt = /^SIGRTMIN(?:\+([0-9]+))?$/.exec(name) ?? /^SIGRTMAX(?:-([0-9]+))?$/.exec(name);
    if (rt) {
      const offset = Number(rt[1] ?? 0);
      const n = name.startsWith('SIGRTMIN') ? 34 + offset : 64 - offset;
      if (n >= 34 && n <= 64) return n;
    }
  }
  throw new HuskError(`unknown signal "${text}"`);
}
