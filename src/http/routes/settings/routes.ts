import { changeSettings } from '../../../domain/settings/change.js';
import { chatSettingsSchema, settingsPatchSchema } from '../../../domain/settings/commands.js';
import { defineRoute, type AnyRoute } from '../../registry.js';

export const settingsRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET',
    url: '/api/v1/settings',
    summary: 'Chat settings: default history count, file size and message limits',
    tags: ['settings'],
    auth: 'user',
    response: { status: 200, description: 'The settings.', schema: chatSettingsSchema },
    handler: ({ domain }) => domain.settings.get(),
  }),
  defineRoute({
    method: 'PATCH',
    url: '/api/v1/settings',
    summary: 'Change chat settings (administrators)',
    tags: ['settings'],
    auth: 'admin',
    audit: 'config.set',
    body: settingsPatchSchema,
    response: {
      status: 200,
      description: 'The settings after the change.',
      schema: chatSettingsSchema,
    },
    handler: ({ domain, actor, body }) => changeSettings(domain, actor, body),
  }),
];
