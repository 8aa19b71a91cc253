// Command-line errors (unknown verb or option, missing argument), for `husk` and `husk image`:
// printed like any other error, on one line, and written to --log as well, as runc does,
// since containerd and Podman show the log's last error line.
import type { GlobalOptions } from './globals';

/** commander's message on one line: without its "error: " and with a suggestion folded in. */
export function oneLine(text: string): string {
  return text.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ');
}

/** Prints `husk: <message>` and logs it; `g` holds the global options parsed so far. */
export function usageError(message: string, g: Partial<GlobalOptions>): void {
  const { configureLog, log } = require('../host/log') as typeof import('../host/log');
  configureLog({ file: g.log, format: g.logFormat === 'json' ? 'json' : 'text', debug: false });
  log.error(message);
}
