import fs from 'node:fs';
import path from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

/**
 * The web client's policy: its own scripts, styles and sockets only; nobody may frame it. It may
 * frame only the given origins (the registered add-ins' origins), or nothing.
 */
export function webCsp(
  frameSources: readonly string[] = [],
  connectSources: readonly string[] = [],
): string {
  const frames = frameSources.length > 0 ? frameSources.join(' ') : "'none'";
  const connects = ["'self'", ...connectSources, 'ws:', 'wss:'].join(' ');
  return (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
    `connect-src ${connects}; font-src 'self'; object-src 'none'; base-uri 'none'; ` +
    `form-action 'self'; frame-src ${frames}; frame-ancestors 'none'`
  );
}

export interface StaticSiteOptions {
  /** Origins the client may frame (add-in panes), read for every response: none by default. */
  frameSources?: () => Promise<string[]>;
  /**
   * Other origins the client may call (the other front ends of its pool, where it moves when
   * its own is idle): none by default.
   */
  connectSources?: () => string[];
}

/** Paths the web client never owns: unknown ones there answer a JSON 404, not index.html. */
export function isServerPath(urlPath: string): boolean {
  return /^\/(api|ws|healthz|openapi\.json)(\/|$)/.test(urlPath);
}

export interface StaticSite {
  /** Serves the file for a GET/HEAD request, or index.html for a client route; false if neither. */
  serve(request: FastifyRequest, reply: FastifyReply): Promise<boolean>;
}

/**
 * Serves the built web client from `root`. Resolves every path inside the real root and refuses
 * anything that leaves it (`..`, encoded slashes, symlinks out), dotfiles and NUL bytes.
 */
export function staticSite(root: string, opts: StaticSiteOptions = {}): StaticSite {
  const realRoot = fs.realpathSync(root);

  async function resolveFile(urlPath: string): Promise<string | undefined> {
    let decoded: string;
    try {
      decoded = decodeURIComponent(urlPath);
    } catch {
      return undefined;
    }
    if (decoded.includes('\0') || decoded.includes('\\')) return undefined;
    const segments = decoded.split('/').filter(Boolean);
    if (segments.some((s) => s === '..' || s.startsWith('.'))) return undefined;
    const candidate = path.join(realRoot, ...segments);
    try {
      const real = await fs.promises.realpath(candidate);
      if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return undefined;
      const stat = await fs.promises.stat(real);
      if (stat.isDirectory()) return resolveFile(`${urlPath.replace(/\/$/, '')}/index.html`);
      return stat.isFile() ? real : undefined;
    } catch {
      return undefined;
    }
  }

  async function send(reply: FastifyReply, file: string, cache: string): Promise<void> {
    const handle = await fs.promises.open(file, 'r');
    const { size } = await handle.stat();
    const type = contentTypes[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
    const frames = opts.frameSources ? await opts.frameSources() : [];
    await reply
      .code(200)
      .header('content-type', type)
      .header('content-length', String(size))
      .header('cache-control', cache)
      .header('content-security-policy', webCsp(frames, opts.connectSources?.() ?? []))
      .send(handle.createReadStream());
  }

  return {
    async serve(request, reply) {
      if (request.method !== 'GET' && request.method !== 'HEAD') return false;
      const urlPath = request.url.split('?')[0] ?? '/';
      if (isServerPath(urlPath)) return false;
      const file = await resolveFile(urlPath);
      if (file) {
        // Vite puts content-hashed names under assets/: they never change.
        const immutable = urlPath.startsWith('/assets/');
        await send(reply, file, immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
        return true;
      }
      // A client-side route (no file extension): the single-page app handles it.
      if (path.extname(urlPath) === '') {
        const index = path.join(realRoot, 'index.html');
        if (fs.existsSync(index)) {
          await send(reply, index, 'no-cache');
          return true;
        }
      }
      return false;
    },
  };
}

/** Shown at `/` when no web client has been built. */
export const notBuiltPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Perch</title></head>
<body>
<h1>Perch</h1>
<p>The web client is not built. The HTTP API is described at <a href="/openapi.json">/openapi.json</a>.</p>
</body>
</html>
`;
