/**
 * CHAP credentials per node, made on a node's first export and kept in the
 * state directory (`<state>/iscsi-chap.json`, mode 0600): the node proves
 * itself with user/secret, and the target proves itself back with
 * mutualUser/mutualSecret (mutual CHAP), so neither the initiator name (which
 * is public) nor a spoofed target is enough. User names carry a random
 * generation id: the targets never show a secret back (tgt), so a new secret
 * must come with a new name for the planner to see the change.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { ChapCredentials } from './state.ts';

/** CHAP user names bootherd makes start with this; tgt accounts outside it are never touched. */
export const ACCOUNT_PREFIX = 'bootherd-';
const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
/** 24 characters of 57: about 140 bits; RFC 3720 asks for at least 96. Letters and digits only: the secret goes into URLs and dracut's netroot=. */
const SECRET_LENGTH = 24;

function secret(): string {
  let s = '';
  for (let i = 0; i < SECRET_LENGTH; i++) s += ALPHABET[randomInt(ALPHABET.length)];
  return s;
}

export function newCredentials(node: string): ChapCredentials {
  const id = randomBytes(4).toString('hex');
  return { user: `${ACCOUNT_PREFIX}${node}-${id}`, secret: secret(), mutualUser: `${ACCOUNT_PREFIX}${node}-${id}-target`, mutualSecret: secret() };
}

export class ChapStore {
  private nodes: Record<string, ChapCredentials> | undefined;

  constructor(readonly file: string) {}

  private load(): Record<string, ChapCredentials> {
    if (this.nodes) return this.nodes;
    try {
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as { nodes?: Record<string, ChapCredentials> };
      this.nodes = parsed.nodes ?? {};
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`${this.file}: cannot read the nodes' CHAP credentials: ${(e as Error).message}`);
      this.nodes = {};
    }
    return this.nodes;
  }

  /** The node's credentials, if made already. */
  peek(node: string): ChapCredentials | undefined {
    return this.load()[node];
  }

  /** The node's credentials, made (and durably saved) now if it has none. */
  get(node: string): ChapCredentials {
    const nodes = this.load();
    let c = nodes[node];
    if (!c) {
      c = newCredentials(node);
      this.save({ ...nodes, [node]: c });
    }
    return c;
  }

  /** Forgets the credentials of nodes no longer exported (a node added again gets new ones). */
  prune(keep: ReadonlySet<string>): void {
    const nodes = this.load();
    const kept = Object.fromEntries(Object.entries(nodes).filter(([n]) => keep.has(n)));
    if (Object.keys(kept).length !== Object.keys(nodes).length) this.save(kept);
  }

  private save(nodes: Record<string, ChapCredentials>): void {
    mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify({ nodes }, null, 1)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
    this.nodes = nodes;
  }
}
