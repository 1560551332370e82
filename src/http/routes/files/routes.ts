import fs from 'node:fs';
import { z } from 'zod';
import { FileNotFoundError } from '../../../errors.js';
import { createDownloadToken, openDownload } from '../../../domain/files/commands.js';
import { defineRoute, type AnyRoute } from '../../registry.js';
import { idParams } from '../../schemas.js';

/** `attachment` with an ASCII fallback name and the exact name in RFC 5987 form. */
export function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  const exact = encodeURIComponent(name).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${exact}`;
}

export const fileRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET',
    url: '/api/v1/files/:id/link',
    summary: 'A short-lived download link for a file in a room the caller may read',
    tags: ['files'],
    auth: 'user',
    params: idParams,
    response: {
      status: 200,
      description: '`{ url, expiresAt }`: the URL needs no Authorization header.',
    },
    handler: async ({ domain, actor, params }) => {
      const { token, expiresAt } = await createDownloadToken(domain, actor, params.id);
      return { url: `/api/v1/files/download/${encodeURIComponent(token)}`, expiresAt };
    },
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/files/download/:token',
    summary: 'Download a file with a link token (the token is the credential)',
    description:
      'Answers `file_not_found` (404) for a bad or expired token, or when its user may no longer read the room.',
    tags: ['files'],
    auth: 'none',
    params: z.object({ token: z.string().min(1).max(512) }),
    response: {
      status: 200,
      description: 'The file, as an attachment.',
      contentType: 'application/octet-stream',
    },
    handler: async ({ domain, params, reply }) => {
      const { file, path } = await openDownload(domain, params.token);
      const handle = await fs.promises.open(path, 'r').catch(() => {
        throw new FileNotFoundError();
      });
      const { size } = await handle.stat();
      return reply
        .code(200)
        .header('content-type', file.contentType)
        .header('content-length', String(size))
        .header('content-disposition', contentDisposition(file.name))
        .header('content-security-policy', "default-src 'none'; sandbox")
        .header('cache-control', 'private, no-store')
        .send(handle.createReadStream());
    },
  }),
];
