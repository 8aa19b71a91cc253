// husk's log: --log FILE and --log-format text|json, written the way runc writes them
// (containerd and Podman read the last "error" line of the JSON log to show why a call
// failed). Without --log, messages go to stderr only.
import * as fs from 'fs';

type Level = 'debug' | 'info' | 'warning' | 'error';

interface LogConfig {
  file?: string;
  format: 'text' | 'json';
  debug: boolean;
}

const config: LogConfig = { format: 'text', debug: false };

export function configureLog(c: Partial<LogConfig>) {
  Object.assign(config, c);
}

function rfc3339(d = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function write(level: Level, msg: string) {
  if (!config.file) return;
  const line = config.format === 'json'
    ? JSON.stringify({ level, msg, time: rfc3339() }) + '\n'
    : `time="${rfc3339()}" level=${level} msg=${JSON.stringify(msg)}\n`;
  try {
    fs.appendFileSync(config.file, line);
  } catch {
    // A log that cannot be written must not hide the error itself.
  }
}

export const log = {
  debug(msg: string) {
    if (!config.debug) return;
    write('debug', msg);
    if (!config.file) process.stderr.write(`husk: debug: ${msg}\n`);
  },
  info(msg: string) {
    write('info', msg);
  },
  warn(msg: string) {
    write('warning', msg);
    process.stderr.write(`husk: warning: ${msg}\n`);
  },
  /** The one place an error is printed: once to stderr, and to the log file. */
  error(msg: string) {
    write('error', msg);
    process.stderr.write(`husk: ${msg}\n`);
  },
};
