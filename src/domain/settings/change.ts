import { requireAdmin } from '../directory/commands.js';
import { logForPool } from '../events.js';
import type { Actor, Domain } from '../types.js';
import type { ChatSettings } from './commands.js';

/**
 * Changes chat settings (administrators only) and records who changed what, in the same
 * transaction as the change.
 */
export async function changeSettings(
  d: Domain,
  actor: Actor,
  patch: unknown,
): Promise<ChatSettings> {
  requireAdmin(actor);
  const before = await d.settings.get();
  const after = await d.settings.set(patch, async (tx, given) => {
    const changes = Object.fromEntries(
      Object.entries(given).filter(([k, v]) => before[k as keyof ChatSettings] !== v),
    );
    await tx.recordActivity({
      kind: 'SETTINGS_CHANGED',
      actorId: actor.userId,
      roomId: null,
      createdAt: d.clock(),
      payload: { changes },
    });
    await logForPool(d, tx, [{ type: 'settings.changed' }]);
  });
  d.events.publish({ type: 'settings.changed' });
  return after;
}
