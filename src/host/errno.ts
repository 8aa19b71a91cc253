// errno numbers -> names and lower-case messages, from Node's own table (libuv's words).
import * as util from 'util';

export function errnoName(errno: number): string {
  const e = util.getSystemErrorMap().get(-Math.abs(errno));
  return e ? e[0] : `E${Math.abs(errno)}`;
}

export function errnoMessage(errno: number): string {
  const e = util.getSystemErrorMap().get(-Math.abs(errno));
  return e ? e[1] : `errno ${Math.abs(errno)}`;
}
