import { t } from '../i18n.js';
import { unread } from '../logic.js';
import { useRoute } from '../router.js';
import { MENTIONS_FEED, type Model } from '../model.js';
import { useModel } from './hooks.js';
import { Link } from './link.js';

export function Sidebar() {
  const [model, state] = useModel();
  const route = useRoute();
  const current =
    route.name === 'room' || route.name === 'settings' ? { id: route.id, pool: route.pool } : null;
  const pools = model.poolModels();
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
      {state.follows.length === 0 && pools.every((m) => m.state.follows.length === 0) ? (
        <p class="muted small">{t.noFollows}</p>
      ) : (
        <FollowedRooms model={model} current={current} labelledBy="followed-heading" />
      )}
      {pools.map((m) =>
        m.state.follows.length === 0 ? null : (
          <div key={m.pool} data-pool={m.pool}>
            <h3 class="sidebar-subheading" id={`followed-${m.pool}`}>
              {t.poolOf(m.pool!)}
            </h3>
            <FollowedRooms model={m} current={current} labelledBy={`followed-${m.pool}`} />
          </div>
        ),
      )}
      {openOthers.length > 0 && (
        <ul class="room-list others">
          {openOthers.map((r) => (
            <li key={r.id}>
              <Link
                href={model.roomPath(r.id)}
                aria-current={current?.id === r.id && !current.pool ? 'page' : undefined}
              >
                <span class="room-name">{r.room!.name}</span>
              </Link>
            </li>
          ))}
        </ul>
      )}
    </nav>
  );
}

/** The followed rooms of one pool's model, with unread and mention counts. */
function FollowedRooms({
  model,
  current,
  labelledBy,
}: {
  model: Model;
  current: { id: number; pool?: string } | null;
  labelledBy: string;
}) {
  return (
    <ul
      class="room-list"
      aria-labelledby={labelledBy}
      data-testid={model.pool === undefined ? 'followed-rooms' : 'pool-followed-rooms'}
    >
      {model.state.follows.map((f) => {
        const n = unread(f);
        const here = current?.id === f.roomId && current.pool === model.pool;
        return (
          <li key={f.roomId} data-room-id={f.roomId}>
            <Link
              href={model.roomPath(f.roomId)}
              class={n > 0 ? 'has-unread' : undefined}
              aria-current={here ? 'page' : undefined}
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
  );
}
