// Helpers for the web client's end-to-end tests: a fresh build of web/dist when the sources
// changed, Debian's Chromium through playwright-core, and an HTTP client for test data.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Screenshots and other artefacts of the browser tests (gitignored). */
export const outputDir = path.join(repoRoot, 'test-output', 'web');

const chromiumPath = process.env.PERCH_CHROMIUM ?? '/usr/bin/chromium';

function newestMtime(p: string): number {
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const e of readdirSync(p)) newest = Math.max(newest, newestMtime(path.join(p, e)));
  return newest;
}

/** Builds web/dist unless it is newer than every client source (and the shared protocol). */
export function ensureWebBuilt(): void {
  const built = path.join(repoRoot, 'web', 'dist', 'index.html');
  const sources = [
    path.join(repoRoot, 'web', 'src'),
    path.join(repoRoot, 'web', 'index.html'),
    path.join(repoRoot, 'web', 'vite.config.ts'),
    path.join(repoRoot, 'src', 'protocol'),
  ];
  if (existsSync(built) && statSync(built).mtimeMs > Math.max(...sources.map(newestMtime))) return;
  const r = spawnSync('npm', ['run', 'build:web', '--silent'], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`npm run build:web failed:\n${r.stdout}\n${r.stderr}`);
}

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(chromiumPath))
    throw new Error(`${chromiumPath} is missing: apt-get install -y chromium`);
  mkdirSync(outputDir, { recursive: true });
  // launch() gives every run a fresh temporary profile (user-data dir).
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
}

/** A fresh browser context (own cookies and storage) with one page, English UI. */
export async function newPage(
  browser: Browser,
  viewport = { width: 1280, height: 800 },
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport, locale: 'en-US' });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) errors.push(m.text());
  });
  (page as Page & { errors: string[] }).errors = errors;
  return { context, page };
}

/** Errors the page threw or CSP violations it reported. */
export function pageErrors(page: Page): string[] {
  return (page as Page & { errors?: string[] }).errors ?? [];
}

/** Signs in through the form and waits until the client is connected. */
export async function signIn(page: Page, baseUrl: string, login: string, password: string) {
  await page.goto(`${baseUrl}/`);
  await page.getByLabel('Login').fill(login);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('[data-testid=connection-status][data-status=online]').waitFor();
}

/** Sequence numbers of the messages shown in the open room, in page order. */
export async function shownSeqs(page: Page): Promise<number[]> {
  return page
    .locator('[data-testid=history] li[data-testid=message]')
    .evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-seq'))));
}

/** A small client of the HTTP API for arranging test data. */
export class Api {
  constructor(
    readonly baseUrl: string,
    readonly token: string,
  ) {}

  static async signIn(baseUrl: string, login: string, password: string): Promise<Api> {
    const res = await fetch(`${baseUrl}/api/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login, password }),
    });
    if (res.status !== 201) throw new Error(`sign-in of ${login} failed: ${res.status}`);
    const body = (await res.json()) as { token: string };
    return new Api(baseUrl, body.token);
  }

  async call<T = unknown>(method: string, url: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.baseUrl}/api/v1${url}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status >= 300)
      throw new Error(`${method} ${url} answered ${res.status}: ${await res.text()}`);
    return (res.status === 204 ? undefined : await res.json()) as T;
  }

  post(roomId: number, text: string): Promise<{ message: { seq: number } }> {
    return this.call('POST', `/rooms/${roomId}/messages`, { text });
  }
}

let axeSource: string | undefined;

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/**
 * Runs axe-core on the page as it is and fails on serious or critical violations (WCAG 2.x A and
 * AA rules, contrast included). axe is evaluated through the DevTools protocol, which the page's
 * CSP (script-src 'self') does not govern, so the page runs under its real policy.
 */
export async function checkA11y(page: Page, label: string): Promise<void> {
  axeSource ??= readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (
      window as unknown as {
        axe: {
          run(
            ctx: Document,
            opts: Record<string, unknown>,
          ): Promise<{
            violations: {
              id: string;
              impact: string | null;
              help: string;
              nodes: { target: unknown[] }[];
            }[];
          }>;
        };
      }
    ).axe;
    const result = await axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
      resultTypes: ['violations'],
    });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => n.target.map(String).join(' ')),
    }));
  });
  const serious = violations.filter(
    (v: AxeViolation) => v.impact === 'serious' || v.impact === 'critical',
  );
  assert.deepEqual(serious, [], `${label}: accessibility violations`);
}
