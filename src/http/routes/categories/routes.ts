import { z } from 'zod';
import {
  createCategory,
  deleteCategory,
  getCategory,
  listCategories,
  updateCategory,
} from '../../../domain/categories/commands.js';
import { nameString, principalNames } from '../../schemas.js';
import { defineRoute, type AnyRoute } from '../../registry.js';

const refParams = z.object({ ref: nameString.describe('Category id or name.') });

const categoryFields = {
  name: z.string().min(1).max(256),
  description: z.string().max(256),
  fileUpload: z.boolean().describe('Whether rooms in it accept file uploads (default false).'),
  invitations: z.boolean().describe('Whether rooms in it send invitations (default false).'),
  history: z.boolean().describe('Whether messages are kept (default true).'),
  retentionDays: z
    .number()
    .int()
    .min(1)
    .max(36_500)
    .nullable()
    .describe(
      'Days messages and files in its rooms are kept before the retention job purges them (1 - 36500); null keeps them forever (default).',
    ),
  allowed: principalNames.describe('Users and groups in scope.'),
  denied: principalNames.describe('Users and groups out of scope; deny wins over allow.'),
  creators: principalNames.describe('Users and groups who may create rooms in it.'),
};

const newCategory = z.object(categoryFields).partial().required({ name: true }).strict();

const categoryPatch = z.object(categoryFields).partial().strict();

export const categoryRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET',
    url: '/api/v1/categories',
    summary: 'Categories the caller is in scope of (all, with their lists, for administrators)',
    tags: ['categories'],
    auth: 'user',
    response: { status: 200, description: 'Categories; users see a `canCreate` flag.' },
    handler: ({ domain, actor }) => listCategories(domain, actor),
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/categories/:ref',
    summary: 'Get a category by id or name, with its allowed, denied and creator lists',
    tags: ['categories'],
    auth: 'user',
    params: refParams,
    response: { status: 200, description: 'The category.' },
    handler: ({ domain, actor, params }) => getCategory(domain, actor, params.ref),
  }),
  defineRoute({
    method: 'POST',
    url: '/api/v1/categories',
    summary: 'Create a category (administrators)',
    tags: ['categories'],
    auth: 'admin',
    audit: 'category.new',
    body: newCategory,
    response: { status: 201, description: 'The new category.' },
    handler: ({ domain, actor, body }) => createCategory(domain, actor, body),
  }),
  defineRoute({
    method: 'PATCH',
    url: '/api/v1/categories/:ref',
    summary: 'Change a category; narrowing its scope prunes room roles at once (administrators)',
    tags: ['categories'],
    auth: 'admin',
    audit: 'category.set',
    params: refParams,
    body: categoryPatch,
    response: { status: 200, description: 'The category after the change.' },
    handler: ({ domain, actor, params, body }) => updateCategory(domain, actor, params.ref, body),
  }),
  defineRoute({
    method: 'DELETE',
    url: '/api/v1/categories/:ref',
    summary: 'Delete an empty category (administrators)',
    tags: ['categories'],
    auth: 'admin',
    audit: 'category.remove',
    params: refParams,
    response: { status: 204, description: 'Deleted.', contentType: null },
    handler: async ({ domain, actor, params }) => {
      await deleteCategory(domain, actor, params.ref);
    },
  }),
];
