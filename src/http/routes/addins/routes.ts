import { z } from 'zod';
import {
  createAddin,
  deleteAddin,
  getAddin,
  listAddins,
  updateAddin,
} from '../../../domain/addins/commands.js';
import { nameString } from '../../schemas.js';
import { defineRoute, type AnyRoute } from '../../registry.js';

const refParams = z.object({ ref: nameString.describe('Add-in id or name.') });

const addinFields = {
  name: z.string().min(1).max(50).describe('Unique name, at most 50 characters.'),
  url: z.string().min(1).max(2048).describe('Absolute http:// or https:// URL.'),
};

export const addinRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET',
    url: '/api/v1/addins',
    summary: 'List add-ins (administrators)',
    tags: ['addins'],
    auth: 'admin',
    response: { status: 200, description: '`[{ id, name, url, createdAt }]`, by name.' },
    handler: ({ domain, actor }) => listAddins(domain, actor),
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/addins/:ref',
    summary: 'Get an add-in by id or name (administrators)',
    tags: ['addins'],
    auth: 'admin',
    params: refParams,
    response: { status: 200, description: 'The add-in.' },
    handler: ({ domain, actor, params }) => getAddin(domain, actor, params.ref),
  }),
  defineRoute({
    method: 'POST',
    url: '/api/v1/addins',
    summary: 'Register an add-in (administrators)',
    tags: ['addins'],
    auth: 'admin',
    audit: 'addin.new',
    body: z.object(addinFields).strict(),
    response: { status: 201, description: 'The new add-in.' },
    handler: ({ domain, actor, body }) => createAddin(domain, actor, body),
  }),
  defineRoute({
    method: 'PATCH',
    url: '/api/v1/addins/:ref',
    summary: 'Rename an add-in or change its URL (administrators)',
    tags: ['addins'],
    auth: 'admin',
    audit: 'addin.set',
    params: refParams,
    body: z.object(addinFields).partial().strict(),
    response: { status: 200, description: 'The add-in after the change.' },
    handler: ({ domain, actor, params, body }) => updateAddin(domain, actor, params.ref, body),
  }),
  defineRoute({
    method: 'DELETE',
    url: '/api/v1/addins/:ref',
    summary: 'Unregister an add-in; rooms that used it are left without one (administrators)',
    tags: ['addins'],
    auth: 'admin',
    audit: 'addin.remove',
    params: refParams,
    response: { status: 204, description: 'Deleted.', contentType: null },
    handler: async ({ domain, actor, params }) => {
      await deleteAddin(domain, actor, params.ref);
    },
  }),
];
