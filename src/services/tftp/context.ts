import type { TftpRequest } from '../../../protocols/tftp/codec.ts';

/** Why a request is refused: the ERROR packet to answer with, and a metric label. */
export interface Refusal {
  readonly code: number;
  readonly message: string;
  readonly reason: string;
}

/** One read or write request on its way through the checks, the resolver and the option negotiation. */
export interface TftpRequestContext {
  readonly req: TftpRequest;
  readonly clientIp: number;
  readonly clientAddress: string;
  readonly clientPort: number;
  /** Transfer mode: netascii converts line ends (RFC 764), octet sends bytes as they are. */
  netascii: boolean;
  /** The requested name once confined: relative, normalized, no `..`. */
  name: string;
  /** Set by the handler that refused the request; the chain stops there. */
  refusal?: Refusal;
  /** When set (debug logging), handlers record why they decided. */
  readonly trace: string[] | undefined;
}

/** A handler reads the request and adds to the context; returning false ends the chain. */
export type Handler = (ctx: TftpRequestContext) => boolean;

export function refuse(ctx: TftpRequestContext, refusal: Refusal): false {
  ctx.refusal = refusal;
  ctx.trace?.push(`refused (${refusal.reason}): ${refusal.message}`);
  return false;
}
