import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * One structured logger for the whole server; services take a child with
 * their name. Hot paths log per-packet decisions at debug only, and check
 * `isLevelEnabled('debug')` first so a disabled level costs one branch.
 */
export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino({ level, base: null, timestamp: pino.stdTimeFunctions.isoTime }, destination ?? process.stderr);
}

export const silentLogger: Logger = pino({ level: 'silent' });
