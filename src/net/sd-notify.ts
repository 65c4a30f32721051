/**
 * systemd's readiness protocol (sd_notify(3)) for Type=notify units: READY=1
 * once every socket is bound, RELOADING=1/READY=1 around a reload,
 * STOPPING=1. Outside systemd ($NOTIFY_SOCKET unset) it does nothing.
 */
import { nativeHelper } from './native.ts';

/** Sends one state line; false when no systemd asked for it. Throws when systemd asked and the datagram could not go. */
export function sdNotify(state: string): boolean {
  const socket = process.env.NOTIFY_SOCKET;
  if (!socket) return false;
  const r = nativeHelper('sd_notify').notify(socket, state);
  if (r < 0) throw new Error(`sd_notify to ${socket} failed (errno ${-r})`);
  return true;
}
