import { z } from 'zod';
import {
  changeGroupMembers,
  createGroup,
  createUser,
  grantPolicy,
  groupReferences,
  lookupPrincipals,
  removeGroup,
  removePolicy,
  toRef,
  updateGroup,
  updateUser,
  upsertPolicy,
} from '../../../domain/directory/commands.js';
import {
  getGroup,
  getUser,
  listGroups,
  listPolicies,
  listUsers,
  userPolicy,
} from '../../../domain/directory/queries.js';
import { syncDirectory } from '../../../domain/directory/sync.js';
import { intString, nameString, principalNames } from '../../schemas.js';
import { defineRoute, type AnyRoute } from '../../registry.js';

const listQuery = z.object({
  filter: z.string().max(256).optional().describe('Matches the name or display name.'),
  limit: intString(500, 1).optional(),
  offset: intString(1_000_000).optional(),
});

const loginParams = z.object({ login: nameString });
const nameParams = z.object({ name: nameString });

const newUser = z
  .object({
    login: z.string().min(1).max(64),
    displayName: z.string().min(1).max(256).optional(),
    email: z.string().max(256).optional(),
    password: z.string().min(8).max(1024),
    isAdmin: z.boolean().optional(),
  })
  .strict();

const userPatch = z
  .object({
    displayName: z.string().min(1).max(256),
    email: z.string().max(256).nullable(),
    password: z.string().min(8).max(1024),
    disabled: z.boolean().describe('Disabling also signs the user out everywhere.'),
    isAdmin: z.boolean(),
  })
  .partial()
  .strict();

const newGroup = z
  .object({
    name: z.string().min(1).max(64),
    displayName: z.string().min(1).max(256).optional(),
    description: z.string().max(1024).optional(),
    members: principalNames.optional().describe('User and group names.'),
  })
  .strict();

const groupPatch = z
  .object({
    name: z.string().min(1).max(64).describe('New name; roles, lists and grants follow the group.'),
    displayName: z.string().min(1).max(256),
    description: z.string().max(1024).nullable(),
  })
  .partial()
  .strict();

const memberChange = z
  .object({ add: principalNames.optional(), remove: principalNames.optional() })
  .strict();

const policyBody = z
  .object({
    enabled: z.boolean().describe('Whether persistent chat is allowed under this policy.'),
    description: z.string().max(1024).nullable().optional(),
  })
  .strict();

const grantBody = z
  .object({
    policy: z
      .string()
      .min(1)
      .max(64)
      .nullable()
      .describe('Policy name, or null to remove the grant.'),
  })
  .strict();

export const directoryRoutes: AnyRoute[] = [
  defineRoute({
    method: 'POST',
    url: '/api/v1/directory/sync',
    summary:
      'Sync users, groups and organisational units from the LDAP directory now (administrators)',
    tags: ['directory'],
    auth: 'admin',
    audit: 'directory.sync',
    body: z.object({ dryRun: z.boolean().optional() }).strict().optional(),
    response: {
      status: 200,
      description:
        'What the directory returned and what changed (or, with dryRun, would change): created, updated, renamed, disabled, enabled, removed, memberships, conflicts, signedOut.',
    },
    handler: ({ domain, actor, body }) =>
      syncDirectory(domain, actor, { dryRun: body?.dryRun ?? false }),
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/users',
    summary: 'List users (administrators)',
    tags: ['users'],
    auth: 'admin',
    query: listQuery,
    response: { status: 200, description: 'Users, by name.' },
    handler: ({ domain, actor, query }) => listUsers(domain, actor, query),
  }),
  defineRoute({
    method: 'POST',
    url: '/api/v1/users',
    summary: 'Create a user (administrators)',
    tags: ['users'],
    auth: 'admin',
    audit: 'user.new',
    body: newUser,
    response: { status: 201, description: 'The new user.' },
    handler: ({ domain, actor, body }) => createUser(domain, actor, body),
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/users/:login',
    summary: 'Get a user (administrators)',
    tags: ['users'],
    auth: 'admin',
    params: loginParams,
    response: { status: 200, description: 'The user.' },
    handler: ({ domain, actor, params }) => getUser(domain, actor, params.login),
  }),
  defineRoute({
    method: 'PATCH',
    url: '/api/v1/users/:login',
    summary:
      'Change a user: display name, e-mail, password, disabled, administrator (administrators)',
    tags: ['users'],
    auth: 'admin',
    audit: 'user.set',
    params: loginParams,
    body: userPatch,
    response: { status: 200, description: 'The user after the change.' },
    handler: ({ domain, actor, params, body }) => updateUser(domain, actor, params.login, body),
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/users/:login/policy',
    summary: 'The persistent chat policy in effect for a user, and its source (administrators)',
    tags: ['policies'],
    auth: 'admin',
    params: loginParams,
    response: { status: 200, description: '`{ enabled, policy, source }`.' },
    handler: ({ domain, actor, params }) => userPolicy(domain, actor, params.login),
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/groups',
    summary: 'List groups (administrators)',
    tags: ['groups'],
    auth: 'admin',
    query: listQuery,
    response: { status: 200, description: 'Groups, by name.' },
    handler: ({ domain, actor, query }) => listGroups(domain, actor, query),
  }),
  defineRoute({
    method: 'POST',
    url: '/api/v1/groups',
    summary: 'Create a group with initial members (administrators)',
    tags: ['groups'],
    auth: 'admin',
    audit: 'group.new',
    body: newGroup,
    response: { status: 201, description: 'The new group with its members.' },
    handler: async ({ domain, actor, body }) => {
      const group = await createGroup(domain, actor, body);
      return getGroup(domain, actor, group.name);
    },
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/groups/:name',
    summary: 'Get a group with its direct members (administrators)',
    tags: ['groups'],
    auth: 'admin',
    params: nameParams,
    response: { status: 200, description: 'The group and its members.' },
    handler: ({ domain, actor, params }) => getGroup(domain, actor, params.name),
  }),
  defineRoute({
    method: 'PATCH',
    url: '/api/v1/groups/:name',
    summary: 'Rename a group or change its display name or description (administrators)',
    tags: ['groups'],
    auth: 'admin',
    audit: 'group.set',
    params: nameParams,
    body: groupPatch,
    response: { status: 200, description: 'The group and its members after the change.' },
    handler: async ({ domain, actor, params, body }) => {
      const group = await updateGroup(domain, actor, params.name, body);
      return getGroup(domain, actor, group.name);
    },
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/groups/:name/references',
    summary: 'Where a group is named: room roles, category lists, parent groups, policy grant',
    description:
      '`blockers` lists why the group cannot be removed (a denied list, a policy grant).',
    tags: ['groups'],
    auth: 'admin',
    params: nameParams,
    response: { status: 200, description: 'The references.' },
    handler: ({ domain, actor, params }) => groupReferences(domain, actor, params.name),
  }),
  defineRoute({
    method: 'DELETE',
    url: '/api/v1/groups/:name',
    summary: 'Remove a group with its memberships, room roles and allowed/creator entries',
    description:
      'Refused with `group_in_use` while the group is on a category denied list or holds a policy grant: removing it would widen access.',
    tags: ['groups'],
    auth: 'admin',
    audit: 'group.remove',
    params: nameParams,
    response: { status: 200, description: 'What was removed with the group.' },
    handler: ({ domain, actor, params }) => removeGroup(domain, actor, params.name),
  }),
  defineRoute({
    method: 'PATCH',
    url: '/api/v1/groups/:name/members',
    summary: 'Add and remove group members (administrators)',
    tags: ['groups'],
    auth: 'admin',
    audit: 'group.members',
    params: nameParams,
    body: memberChange,
    response: { status: 200, description: 'The group and its members after the change.' },
    handler: async ({ domain, actor, params, body }) => {
      await changeGroupMembers(domain, actor, params.name, body);
      return getGroup(domain, actor, params.name);
    },
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/principals',
    summary: 'Look up users and groups by name (to fill role and scope lists)',
    tags: ['principals'],
    auth: 'user',
    query: listQuery.extend({ kind: z.enum(['user', 'group']).optional() }),
    response: { status: 200, description: '`[{ id, kind, name, displayName }]`.' },
    handler: async ({ domain, actor, query }) =>
      (await lookupPrincipals(domain, actor, query)).map(toRef),
  }),
  defineRoute({
    method: 'PUT',
    url: '/api/v1/principals/:name/policy',
    summary: 'Grant a policy to a user or group, or remove its grant with null (administrators)',
    tags: ['policies'],
    auth: 'admin',
    audit: 'policy.grant',
    params: nameParams,
    body: grantBody,
    response: { status: 204, description: 'Granted.', contentType: null },
    handler: async ({ domain, actor, params, body }) => {
      await grantPolicy(domain, actor, params.name, body.policy);
    },
  }),
  defineRoute({
    method: 'GET',
    url: '/api/v1/policies',
    summary: 'List persistent chat policies (administrators)',
    tags: ['policies'],
    auth: 'admin',
    response: { status: 200, description: '`[{ name, enabled, description }]`.' },
    handler: ({ domain, actor }) => listPolicies(domain, actor),
  }),
  defineRoute({
    method: 'PUT',
    url: '/api/v1/policies/:name',
    summary: 'Create or replace a policy; `global` is the default for everybody (administrators)',
    tags: ['policies'],
    auth: 'admin',
    audit: 'policy.set',
    params: nameParams,
    body: policyBody,
    response: { status: 200, description: 'The policy.' },
    handler: ({ domain, actor, params, body }) =>
      upsertPolicy(domain, actor, { name: params.name, ...body }),
  }),
  defineRoute({
    method: 'DELETE',
    url: '/api/v1/policies/:name',
    summary: 'Delete a policy; deleting `global` resets it to enabled (administrators)',
    tags: ['policies'],
    auth: 'admin',
    audit: 'policy.remove',
    params: nameParams,
    response: { status: 204, description: 'Deleted.', contentType: null },
    handler: async ({ domain, actor, params }) => {
      await removePolicy(domain, actor, params.name);
    },
  }),
];
