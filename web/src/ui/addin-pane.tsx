import { useEffect, useRef } from 'preact/hooks';
import { AddinBridge } from '../addin-api.js';
import { t } from '../i18n.js';
import type { RoomState } from '../model.js';
import type { RoomView } from '../types.js';
import { useModel } from './hooks.js';

/** The add-in URL's origin, or null for a URL that cannot be framed safely. */
export function addinOrigin(url: string): string | null {
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    // A page on Perch's own origin could lift its sandbox and script the client: never framed.
    return u.origin === location.origin ? null : u.origin;
  } catch {
    return null;
  }
}

/**
 * A room's add-in in a side pane: a sandboxed iframe of the add-in URL that speaks the add-in
 * API (web/src/addin-api.ts) with this page.
 */
export function AddinPane({ room, rs }: { room: RoomView; rs: RoomState }) {
  const [model, state] = useModel();
  const frame = useRef<HTMLIFrameElement>(null);
  const bridge = useRef<AddinBridge | null>(null);
  const pushed = useRef(rs.messages.at(-1)?.seq ?? 0);
  const live = useRef({ room, rs });
  live.current = { room, rs };
  const addin = room.addin!;
  const origin = addinOrigin(addin.url);
  const user = state.session!.user;

  useEffect(() => {
    if (!origin) return;
    const b = new AddinBridge({
      origin,
      target: () => frame.current?.contentWindow ?? null,
      context: () => ({
        room: { id: live.current.room.id, name: live.current.room.name },
        user: { name: user.name, displayName: user.displayName },
      }),
      recent: (limit) => live.current.rs.messages.slice(-limit),
      post: (p) => model.postNow(room.id, p),
      now: () => Date.now(),
    });
    bridge.current = b;
    const onMessage = (e: MessageEvent) => b.handle(e);
    window.addEventListener('message', onMessage);
    return () => {
      window.removeEventListener('message', onMessage);
      bridge.current = null;
    };
  }, [room.id, addin.url]);

  // New messages of the room go to the add-in as they arrive.
  useEffect(() => {
    for (const m of rs.messages) {
      if (m.seq <= pushed.current) continue;
      bridge.current?.push(m);
      pushed.current = m.seq;
    }
  }, [rs.messages]);

  return (
    <aside id="addin-pane" class="addin-pane" aria-label={t.addinPane(addin.name)}>
      <h2>{addin.name}</h2>
      {origin ? (
        // allow-same-origin keeps the add-in's own (different) origin, so that messages can be
        // checked against it and sent only to it; it cannot reach this page, which is
        // cross-origin to it. The page's CSP frame-src admits only add-in origins.
        <iframe
          ref={frame}
          src={addin.url}
          title={addin.name}
          sandbox="allow-scripts allow-forms allow-same-origin"
          referrerpolicy="no-referrer"
          data-testid="addin-frame"
        />
      ) : (
        <p role="alert">{t.addinRefused}</p>
      )}
    </aside>
  );
}
