import { z } from 'zod';
import { roomRights } from '../access.js';
import { requireAddin } from '../addins/commands.js';
import { requireCategory } from '../categories/commands.js';
import { requireAdmin, resolvePrincipals } from '../directory/commands.js';
import type { Actor, Domain } from '../types.js';
import { parseInput } from '../validation.js';
import { presentRoom, type RoomView } from './commands.js';

// Lync's Get-CsPersistentChatRoom for administrators: every room, disabled ones included, with the
// filters that cmdlet has. The room directory (searchRooms) is the users' view and hides disabled
// rooms even from administrators.

const listSchema = z
  .object({
    name: z.string().min(1).max(256).optional(),
    filter: z.string().max(256).optional(),
    includeDescription: z.boolean().default(false),
    category: z.union([z.string().min(1).max(256), z.number().int().positive()]).optional(),
    disabled: z.boolean().optional(),
    privacy: z.enum(['open', 'closed', 'secret']).optional(),
    type: z.enum(['normal', 'auditorium']).optional(),
    addin: z.string().min(1).max(50).optional(),
    member: z.string().min(1).max(256).optional(),
    manager: z.string().min(1).max(256).optional(),
    limit: z.number().int().min(1).max(10_000).default(100),
  })
  .strict();

/** Every room matching the filters, by name (administrators only). */
export async function listAllRooms(d: Domain, actor: Actor, input: unknown): Promise<RoomView[]> {
  requireAdmin(actor);
  const q = parseInput(listSchema, input ?? {}, 'room list');
  const categoryId =
    q.category === undefined ? undefined : (await requireCategory(d, q.category)).id;
  const addinId = q.addin === undefined ? undefined : (await requireAddin(d, q.addin)).id;
  const [member] = q.member ? await resolvePrincipals(d, [q.member]) : [];
  const [manager] = q.manager ? await resolvePrincipals(d, [q.manager]) : [];
  const text = q.filter?.toLowerCase();
  const name = q.name?.normalize('NFKC').toLowerCase();
  const rooms = await d.store.listRooms({ categoryId, limit: 1_000_000, offset: 0 });
  const out: RoomView[] = [];
  for (const room of rooms.sort((a, b) => a.name.localeCompare(b.name))) {
    if (out.length >= q.limit) break;
    if (name !== undefined && room.name.normalize('NFKC').toLowerCase() !== name) continue;
    if (text) {
      const hay = q.includeDescription ? `${room.name}\n${room.description}` : room.name;
      if (!hay.toLowerCase().includes(text)) continue;
    }
    if (q.disabled !== undefined && room.disabled !== q.disabled) continue;
    if (q.privacy !== undefined && room.privacy !== q.privacy) continue;
    if (q.type !== undefined && room.type !== q.type) continue;
    if (addinId !== undefined && room.addinId !== addinId) continue;
    const info = await d.access.room(room.id);
    if (!info) continue;
    // Direct role holders only, as Lync's -Member and -Manager filters.
    if (member && !info.roles.members.includes(member.id)) continue;
    if (manager && !info.roles.managers.includes(manager.id)) continue;
    out.push(await presentRoom(d, info, roomRights(info, actor)));
  }
  return out;
}
