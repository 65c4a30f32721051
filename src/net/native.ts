/**
 * The native helpers in native/ (C, built by scripts/setup.sh into
 * native/build): the one declaration of what each exports, and the loader.
 * Loaded on first use, so a tool that never opens a socket does not need
 * them built. test/unit/native-contract.test.ts checks the built .node files
 * against NATIVE_EXPORTS.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** native/udp_socket.c: UDP sockets Node's dgram cannot make (SO_BINDTODEVICE, SO_REUSEPORT, kernel receive times); used by udp.ts. */
export interface UdpSocketNative {
  openUdp4(options: { address: string; port: number; device?: string; broadcast?: boolean; reuseAddr?: boolean; reusePort?: boolean; rxTimestamps?: boolean }): number;
  rxTimestamp(fd: number, out: Float64Array): boolean;
  sendStamped(fd: number, bytes: Buffer, length: number, address: string, port: number, stampOffset: number, keepBits: number): number;
}

/** native/udp_batch.c: recvmmsg/sendmmsg batches and GSO sends; used by udp-batch.ts. */
export interface UdpBatchNative {
  open(fd: number, slots: number, slotSize: number, recvBufferSize: number, sendBufferSize: number, peerErrors: boolean, stampOffset: number): { handle: object; rx: ArrayBuffer; tx: ArrayBuffer; rxMeta: ArrayBuffer; txMeta: ArrayBuffer; rxStamps: ArrayBuffer; port: number };
  start(handle: object, onBatch: (received: number) => number, onPeerError?: (address: number, port: number, errno: number) => void): void;
  sendSlots(handle: object, count: number): void;
  sendParts(handle: object, parts: readonly Buffer[], address: number, port: number, segmentSize: number): number;
  close(handle: object, done: () => void): void;
}

/** native/sendfile_pump.c: file bodies onto TCP sockets with sendfile(2) from a thread of its own; used by sendfile-pump.ts. */
export interface SendfilePumpNative {
  create(onDone: (id: number, errno: number, sent: number) => void, stallMs: number): object;
  send(handle: object, id: number, socketFd: number, fileFd: number, offset: number, length: number): number;
  cancel(handle: object, id: number): void;
  keepAlive(handle: object, on: boolean): void;
  close(handle: object): void;
}

/** native/sd_notify.c: sd_notify(3)'s datagram to $NOTIFY_SOCKET from this PID; used by sd-notify.ts. */
export interface SdNotifyNative {
  notify(socket: string, message: string): number;
}

/** Each helper by its file name in native/build (without .node). */
export interface NativeHelpers {
  readonly udp_socket: UdpSocketNative;
  readonly udp_batch: UdpBatchNative;
  readonly sendfile_pump: SendfilePumpNative;
  readonly sd_notify: SdNotifyNative;
}

export type NativeHelperName = keyof NativeHelpers;

/**
 * The names each helper's init() defines. Written as objects so that the
 * typecheck fails when a name is here but not in the interface above, or
 * the other way round.
 */
export const NATIVE_EXPORTS: { readonly [K in NativeHelperName]: { readonly [F in keyof NativeHelpers[K]]: true } } = {
  udp_socket: { openUdp4: true, rxTimestamp: true, sendStamped: true },
  udp_batch: { open: true, start: true, sendSlots: true, sendParts: true, close: true },
  sendfile_pump: { create: true, send: true, cancel: true, keepAlive: true, close: true },
  sd_notify: { notify: true },
};

/** How the error for an unbuilt helper names it. */
const DESCRIPTIONS: Readonly<Record<NativeHelperName, string>> = {
  udp_socket: 'socket helper',
  udp_batch: 'batch UDP helper',
  sendfile_pump: 'sendfile helper',
  sd_notify: 'systemd notify helper',
};

export const NATIVE_BUILD_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../native/build');
const loaded = new Map<NativeHelperName, unknown>();

/** The helper native/<name>.c as built. */
export function nativeHelper<K extends NativeHelperName>(name: K): NativeHelpers[K] {
  let helper = loaded.get(name);
  if (!helper) {
    const file = path.join(NATIVE_BUILD_DIR, `${name}.node`);
    if (!existsSync(file)) throw new Error(`the native ${DESCRIPTIONS[name]} is not built (${file}); run "npm run setup"`);
    helper = createRequire(import.meta.url)(file);
    loaded.set(name, helper);
  }
  return helper as NativeHelpers[K];
}
