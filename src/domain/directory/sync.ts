import { DirectoryNotConfiguredError } from '../../errors.js';
import type { DirectoryLink, Principal, StoreOps } from '../../store/store.js';
import { logForPool, type ChangeEvent } from '../events.js';
import type { Actor, DirectoryEntry, DirectoryProgress, Domain } from '../types.js';
import { requireAdmin } from './commands.js';
import { normalizeDn } from './dn.js';

// Lync's AD sync: the directory's users, groups and organisational units become principals
// (source `ldap`), linked by a stable id so renames are followed. Each run reads the whole
// directory first and writes nothing until the read is complete; then it writes only what
// changed, in one transaction. A directory that cannot be read changes nothing.

export interface DirectorySyncSummary {
  dryRun: boolean;
  /** What the directory returned. */
  read: { users: number; groups: number; ous: number; skipped: string[] };
  created: string[];
  updated: string[];
  renamed: { from: string; to: string }[];
  disabled: string[];
  enabled: string[];
  /** Directory users gone from the directory: disabled in Perch, their messages kept. */
  removed: string[];
  /** Groups whose direct members changed, with the members added and removed (by name). */
  memberships: { group: string; added: string[]; removed: string[] }[];
  /** Entries not synced because a local user or group holds the name. */
  conflicts: { dn: string; name: string }[];
  /** Users whose sessions were revoked (disabled or removed in the directory). */
  signedOut: string[];
}

export interface DirectorySyncOptions {
  dryRun?: boolean;
  onProgress?: (p: DirectoryProgress) => void;
}

/**
 * Syncs users, groups (with nested membership) and OUs from the directory (administrators, or
 * the scheduled job with `actor` null). Disabled and removed directory users lose their sessions
 * at once, and their live connections are closed; their messages stay.
 */
export async function syncDirectory(
  d: Domain,
  actor: Actor | null,
  opts: DirectorySyncOptions = {},
): Promise<DirectorySyncSummary> {
  if (actor) requireAdmin(actor);
  if (!d.directory) throw new DirectoryNotConfiguredError();
  const dryRun = opts.dryRun ?? false;
  // The whole read before any write: an outage part-way changes nothing.
  const snapshot = await d.directory.fetch(opts.onProgress);
  const summary: DirectorySyncSummary = {
    dryRun,
    read: {
      users: snapshot.users.length,
      groups: snapshot.groups.length,
      ous: snapshot.ous.length,
      skipped: snapshot.skipped,
    },
    created: [],
    updated: [],
    renamed: [],
    disabled: [],
    enabled: [],
    removed: [],
    memberships: [],
    conflicts: [],
    signedOut: [],
  };
  const events: ChangeEvent[] = [];
  const now = d.clock();
  const apply = async (tx: StoreOps): Promise<void> => {
    const links = await tx.listDirectoryLinks();
    const byExternal = new Map(links.map((l) => [l.externalId, l]));
    const existing = new Map(
      (await tx.getPrincipals(links.map((l) => l.principalId))).map((p) => [p.id, p]),
    );
    const seen = new Set<number>();
    const linked = new Set(links.map((l) => l.principalId));
    /** Principal of each synced entry by normalized DN; ids are negative for dry-run creations. */
    const byDn = new Map<string, { id: number; name: string }>();
    let fakeId = -1;

    const signOut = (p: Principal): void => {
      summary.signedOut.push(p.name);
      events.push({ type: 'user.signed_out', userId: p.id, all: true });
    };

    const upsert = async (e: DirectoryEntry): Promise<void> => {
      const kind = e.kind === 'user' ? 'user' : 'group';
      let link = byExternal.get(e.externalId);
      let current = link && existing.get(link.principalId);
      const newLink = (principalId: number): DirectoryLink => ({
        principalId,
        externalId: e.externalId,
        dn: e.dn,
        entryKind: e.kind,
        syncedAt: now,
      });
      if (!current || current.kind !== kind) {
        const holder = await tx.getPrincipalByName(e.name);
        if (
          holder &&
          holder.source === 'ldap' &&
          holder.kind === kind &&
          !linked.has(holder.id) &&
          !seen.has(holder.id)
        ) {
          // A directory principal that lost its link (a data import carries no links, or the
          // directory was rebuilt): the entry of the same name takes it over, keeping its id.
          link = newLink(holder.id);
          current = holder;
          if (!dryRun) await tx.saveDirectoryLink(link);
        }
      }
      if (!current || current.kind !== kind) {
        const holder = await tx.getPrincipalByName(e.name);
        if (holder) {
          summary.conflicts.push({ dn: e.dn, name: e.name });
          return;
        }
        summary.created.push(e.name);
        if (dryRun) {
          byDn.set(normalizeDn(e.dn), { id: fakeId--, name: e.name });
          return;
        }
        const p = await tx.createPrincipal(
          {
            kind,
            name: e.name,
            displayName: e.displayName,
            email: e.email,
            description: e.description,
            disabled: e.disabled,
            source: 'ldap',
          },
          now,
        );
        await tx.saveDirectoryLink(newLink(p.id));
        seen.add(p.id);
        byDn.set(normalizeDn(e.dn), { id: p.id, name: p.name });
        return;
      }
      seen.add(current.id);
      let name = current.name;
      if (current.name !== e.name) {
        const holder = await tx.getPrincipalByName(e.name);
        if (holder && holder.id !== current.id) {
          summary.conflicts.push({ dn: e.dn, name: e.name });
        } else {
          summary.renamed.push({ from: current.name, to: e.name });
          name = e.name;
        }
      }
      byDn.set(normalizeDn(e.dn), { id: current.id, name });
      const changed =
        name !== current.name ||
        current.displayName !== e.displayName ||
        current.email !== e.email ||
        (kind === 'group' && current.description !== e.description) ||
        current.disabled !== e.disabled;
      if (changed && name === current.name) summary.updated.push(name);
      if (e.disabled && !current.disabled) {
        summary.disabled.push(name);
        signOut(current);
      }
      if (!e.disabled && current.disabled) summary.enabled.push(name);
      if (dryRun) return;
      if (changed) {
        await tx.updatePrincipal(
          current.id,
          {
            name,
            displayName: e.displayName,
            email: e.email,
            description: kind === 'group' ? e.description : undefined,
            disabled: e.disabled,
          },
          now,
        );
        if (e.disabled && !current.disabled) await tx.revokeUserSessions(current.id, now);
      }
      if (link!.dn !== e.dn || link!.entryKind !== e.kind) {
        await tx.saveDirectoryLink(newLink(current.id));
      }
    };

    for (const e of [...snapshot.users, ...snapshot.groups, ...snapshot.ous]) await upsert(e);

    // Entries gone from the directory: users are disabled (their messages stay), groups and OUs
    // are emptied and disabled, so whatever they granted goes and any denial they held is moot.
    for (const link of links) {
      const p = existing.get(link.principalId);
      if (!p || seen.has(p.id)) continue;
      if (p.disabled && (p.kind === 'user' || (await tx.listGroupMembers(p.id)).length === 0)) {
        continue;
      }
      summary.removed.push(p.name);
      if (p.kind === 'user') signOut(p);
      if (dryRun) continue;
      await tx.updatePrincipal(p.id, { disabled: true }, now);
      if (p.kind === 'user') await tx.revokeUserSessions(p.id, now);
      else {
        const members = await tx.listGroupMembers(p.id);
        if (members.length > 0) {
          summary.memberships.push({
            group: p.name,
            added: [],
            removed: (await tx.getPrincipals(members)).map((m) => m.name).sort(),
          });
          await tx.removeGroupMembers(p.id, members);
        }
      }
    }

    // Direct members of each group and OU, as the directory has them. Members outside the
    // synced entries (contacts, foreign principals) are left out.
    for (const e of [...snapshot.groups, ...snapshot.ous]) {
      const group = byDn.get(normalizeDn(e.dn));
      if (!group) continue;
      const want = new Map<number, string>();
      for (const m of e.members) {
        const member = byDn.get(normalizeDn(m));
        if (member && member.id !== group.id) want.set(member.id, member.name);
      }
      const have = group.id > 0 ? await tx.listGroupMembers(group.id) : [];
      const added = [...want.keys()].filter((id) => !have.includes(id));
      const removedIds = have.filter((id) => !want.has(id));
      if (added.length === 0 && removedIds.length === 0) continue;
      const removedNames = (await tx.getPrincipals(removedIds)).map((p) => p.name);
      summary.memberships.push({
        group: group.name,
        added: added.map((id) => want.get(id)!).sort(),
        removed: removedNames.sort(),
      });
      if (dryRun) continue;
      await tx.addGroupMembers(
        group.id,
        added.filter((id) => id > 0),
      );
      await tx.removeGroupMembers(group.id, removedIds);
    }

    const changed =
      summary.created.length +
        summary.updated.length +
        summary.renamed.length +
        summary.disabled.length +
        summary.enabled.length +
        summary.removed.length +
        summary.memberships.length >
      0;
    if (!changed || dryRun) return;
    // Sign-outs first: a disabled user's connections close as signed out, not by a re-check.
    events.push({ type: 'directory.changed' });
    await tx.recordActivity({
      kind: 'DIRECTORY_SYNCED',
      actorId: actor?.userId ?? null,
      roomId: null,
      createdAt: now,
      payload: {
        created: summary.created,
        updated: summary.updated,
        renamed: summary.renamed,
        disabled: summary.disabled,
        enabled: summary.enabled,
        removed: summary.removed,
        memberships: summary.memberships,
      },
    });
    await logForPool(d, tx, events);
  };
  if (dryRun) {
    await apply(d.store);
    return summary;
  }
  await d.store.transaction(apply);
  if (events.length > 0) {
    d.access.invalidateDirectory();
    for (const event of events) d.events.publish(event);
  }
  return summary;
}
