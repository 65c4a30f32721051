/**
 * Debian's headless Chromium driven by playwright-core (test/helpers only).
 * `ns`: run it inside a lab network namespace (through `ip netns exec`, which
 * keeps playwright's pipe to it), so it reaches a head on a lab address.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

interface Teardownable { teardown(fn: () => unknown): void }

export interface Browser {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Console messages about the Content-Security-Policy (none expected). */
  readonly cspViolations: string[];
}

export async function launchChromium(t: Teardownable, opts: { ns?: string; viewport?: { width: number; height: number } } = {}): Promise<Browser> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-chromium-'));
  let executablePath = '/usr/bin/chromium';
  if (opts.ns) {
    executablePath = path.join(dir, 'chromium-in-netns');
    writeFileSync(executablePath, `#!/bin/sh\nexec ip netns exec ${opts.ns} /usr/bin/chromium "$@"\n`);
    chmodSync(executablePath, 0o755);
  }
  const context = await chromium.launchPersistentContext(path.join(dir, 'profile'), {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: opts.viewport ?? { width: 1000, height: 640 },
    timeout: 30_000,
  });
  t.teardown(() => context.close());
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(15_000);
  const cspViolations: string[] = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text()); });
  return { context, page, cspViolations };
}
