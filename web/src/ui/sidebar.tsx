import { t } from '../i18n.js';
import { unread } from '../logic.js';
import { useRoute } from '../router.js';
import { MENTIONS_FEED } from '../model.js';
import { useModel } from './hooks.js';
import { Link } from './link.js';

export function Sidebar() {
  const [model, state] = useModel();
  const route = useRoute();
  const current = route.name === 'room' || route.name === 'settings' ? route.id : null;
  const unseen = state.invitations.filter((i) => i.seenAt === null).length;
  const followed = new Set(state.follows.map((f) => f.roomId));
  const openOthers = [...state.rooms.values()].filter(
    (r) => r.open && r.room && !followed.has(r.id),
  );

  return (
    <nav id="sidebar" class="sidebar" aria-label={t.menu}>
      <ul class="nav-list">
        <li>
          <Link href="/directory" aria-current={route.name === 'directory' ? 'page' : undefined}>
            {t.directory}
          </Link>
        </li>
        <li>
          <Link href="/search" aria-current={route.name === 'search' ? 'page' : undefined}>
            {t.search}
          </Link>
        </li>
        <li>
          <Link
            href="/invitations"
            aria-current={route.name === 'invitations' ? 'page' : undefined}
          >
            {t.invitations}
            {unseen > 0 && (
              <span class="badge" aria-label={`${unseen} ${t.newBadge}`}>
                {unseen}
              </span>
            )}
          </Link>
        </li>
        <li>
          <Link href="/rooms/new" aria-current={route.name === 'new' ? 'page' : undefined}>
            {t.newRoom}
          </Link>
        </li>
      </ul>
      <h2 class="sidebar-heading" id="feeds-heading">
        <Link href="/feeds" aria-current={route.name === 'feeds' ? 'page' : undefined}>
          {t.feeds}
        </Link>
      </h2>
      <ul class="room-list" aria-labelledby="feeds-heading" data-testid="feeds">
        {[
          { key: MENTIONS_FEED, name: t.mentionsFeed },
          ...state.feeds.map((f) => ({ key: String(f.id), name: f.name })),
        ].map(({ key, name }) => {
          const n = model.newMatches(key);
          return (
            <li key={key} data-feed={key}>
              <Link
                href={`/feeds/${key}`}
                class={n > 0 ? 'has-unread' : undefined}
                aria-current={route.name === 'feed' && route.key === key ? 'page' : undefined}
              >
                <span class="room-name">{name}</span>
                {n > 0 && (
                  <span class="badge" data-testid="feed-new" aria-label={t.feedNewCount(n)}>
                    {n}
                  </span>
                )}
              </Link>
            </li>
          );
        })}
      </ul>
      <h2 class="sidebar-heading" id="followed-heading">
        {t.followedRooms}
      </h2>
      {state.follows.length === 0 ? (
        <p class="muted small">{t.noFollows}</p>
      ) : (
        <ul class="room-list" aria-labelledby="followed-heading" data-testid="followed-rooms">
          {state.follows.map((f) => {
            const n = unread(f);
            return (
              <li key={f.roomId} data-room-id={f.roomId}>
                <Link
                  href={`/rooms/${f.roomId}`}
                  class={n > 0 ? 'has-unread' : undefined}
                  aria-current={current === f.roomId ? 'page' : undefined}
                >
                  <span class="room-name">{f.name}</span>
                  {f.mentions > 0 && (
                    <span
                      class="badge mention"
                      data-testid="mentions"
                      aria-label={t.mentionCount(f.mentions)}
                    >
                      @{f.mentions}
                    </span>
                  )}
                  {n > 0 && (
                    <span class="badge" data-testid="unread" aria-label={t.unreadCount(n)}>
                      {n}
                    </span>
                  )}
                </Link>
              </li>
            );
          })}
        </ul>
      )}
      {openOthers.length > 0 && (
        <ul class="room-list others">
          {openOthers.map((r) => (
            <li key={r.id}>
              <Link href={`/rooms/${r.id}`} aria-current={current === r.id ? 'page' : undefined}>
                <span class="room-name">{r.room!.name}</span>
              </Link>
            </li>
          ))}
        </ul>
      )}
    </nav>
  );
}
