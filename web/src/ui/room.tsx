import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { errorText, t } from '../i18n.js';
import type { RoomState } from '../model.js';
import { navigate } from '../router.js';
import type { RoomView } from '../types.js';
import { AddinPane } from './addin-pane.js';
import { Composer } from './composer.js';
import { useModel } from './hooks.js';
import { Link } from './link.js';
import { Message } from './message.js';

export function RoomPage({ id, seq }: { id: number; seq?: number }) {
  const [model, state] = useModel();
  const rs = state.rooms.get(id);
  const online = state.status === 'online';
  const [side, setSide] = useState<'info' | 'addin' | null>(null);
  const showInfo = side === 'info';

  useEffect(() => {
    if (online || state.status === 'syncing') void model.openRoom(id);
  }, [id, online]);

  const room = rs?.room;
  const following = state.follows.some((f) => f.roomId === id);

  if (rs?.error && !room) {
    return (
      <section class="room-error">
        <p role="alert">{errorText(rs.error.code, t.roomNotAvailable)}</p>
        <Link href="/directory">{t.directory}</Link>
      </section>
    );
  }
  if (!rs || !room) return <section class="loading" aria-busy="true" />;

  return (
    <section class={`room${side ? ' with-info' : ''}`} aria-labelledby="room-title">
      <header class="room-header">
        <div class="room-heading">
          <h1 id="room-title">{room.name}</h1>
          {model.pool !== undefined && (
            <span class="tag" data-testid="room-pool" title={t.poolOf(model.pool)}>
              {model.pool}
            </span>
          )}
          <span class={`tag privacy-${room.privacy}`}>{t[room.privacy]}</span>
          {room.type === 'auditorium' && <span class="tag">{t.auditorium}</span>}
          {room.description && <p class="room-description">{room.description}</p>}
        </div>
        <div class="room-actions">
          <button
            type="button"
            class="secondary"
            aria-pressed={following}
            onClick={() => void model.follow(id, !following)}
          >
            {following ? t.unfollow : t.follow}
          </button>
          <button
            type="button"
            class="secondary"
            aria-expanded={showInfo}
            aria-controls="room-info"
            onClick={() => setSide(showInfo ? null : 'info')}
          >
            {t.roomInfo}
          </button>
          {room.addin && (
            <button
              type="button"
              class="secondary"
              aria-expanded={side === 'addin'}
              aria-controls="addin-pane"
              onClick={() => setSide(side === 'addin' ? null : 'addin')}
            >
              {t.addinButton(room.addin.name)}
            </button>
          )}
          {room.my.canManage && (
            <Link href={model.roomPath(id, '/settings')} class="button secondary">
              {t.settings}
            </Link>
          )}
        </div>
      </header>
      {rs.error && (
        <p class="banner" role="alert">
          {errorText(rs.error.code, rs.error.message)}
        </p>
      )}
      <div class="room-body">
        <div class="room-main">
          <History id={id} rs={rs} seq={seq} />
          <Composer id={id} room={room} pending={rs.pending} uploads={rs.uploads} />
        </div>
        {showInfo && <RoomInfo room={room} rs={rs} />}
        {side === 'addin' && room.addin && <AddinPane room={room} rs={rs} />}
      </div>
    </section>
  );
}

function History({ id, rs, seq }: { id: number; rs: RoomState; seq?: number }) {
  const [model, state] = useModel();
  const list = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const prev = useRef<{ first: number; last: number; height: number }>({
    first: 0,
    last: 0,
    height: 0,
  });
  const first = rs.messages[0]?.seq ?? 0;
  const last = rs.messages.at(-1)?.seq ?? 0;

  // Keep the view anchored: older pages are added above without moving what is on screen,
  // new messages scroll into view only when the reader is at the bottom.
  useLayoutEffect(() => {
    const el = list.current;
    if (!el) return;
    const p = prev.current;
    if (p.first && first < p.first) el.scrollTop += el.scrollHeight - p.height;
    else if (last !== p.last && stick.current && !seq) el.scrollTop = el.scrollHeight;
    prev.current = { first, last, height: el.scrollHeight };
  });

  // A link to a message: page back until it is loaded, then show it.
  useEffect(() => {
    if (!seq || !rs.loaded) return;
    if (first > seq && rs.hasOlder) {
      if (!rs.loadingOlder) void model.loadOlder(id);
      return;
    }
    document.getElementById(`m-${seq}`)?.scrollIntoView({ block: 'center' });
  }, [seq, first, rs.loaded, rs.hasOlder, rs.loadingOlder]);

  // Reading the room marks it read.
  const follow = state.follows.find((f) => f.roomId === id);
  useEffect(() => {
    if (document.visibilityState === 'visible') model.markRead(id);
  }, [id, last, follow?.lastSeq, follow?.lastReadSeq, state.status]);
  useEffect(() => {
    const on = () => {
      if (document.visibilityState === 'visible') model.markRead(id);
    };
    document.addEventListener('visibilitychange', on);
    return () => document.removeEventListener('visibilitychange', on);
  }, [id]);

  function onScroll() {
    const el = list.current;
    if (!el) return;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (el.scrollTop < 120 && rs.hasOlder && !rs.loadingOlder) void model.loadOlder(id);
  }

  return (
    <div class="history" ref={list} onScroll={onScroll} data-testid="history">
      <div class="history-top">
        {rs.loaded && !rs.hasOlder && <p class="muted small">{t.beginning}</p>}
        {rs.hasOlder && (
          <button
            type="button"
            class="link-button"
            disabled={rs.loadingOlder}
            onClick={() => void model.loadOlder(id)}
          >
            {rs.loadingOlder ? t.loadingOlder : t.loadOlder}
          </button>
        )}
      </div>
      <div role="log" aria-label={t.messageLabel}>
        <ol class="messages">
          {rs.messages.map((m) => (
            <Message key={m.seq} m={m} highlight={m.seq === seq} />
          ))}
          {rs.pending.map((p) => (
            <li key={p.clientId} class={`message pending ${p.status}`} data-testid="pending">
              <div class="message-meta">
                <span class="author">{state.session?.user.displayName}</span>
                <span class="muted small">
                  {p.status === 'sending'
                    ? t.sending
                    : `${t.notSent}: ${errorText(p.error ?? '', p.error ?? '')}`}
                </span>
              </div>
              {p.title && <div class="story-title">{p.title}</div>}
              <div class="message-text">{p.text}</div>
              {p.status === 'failed' && (
                <div class="pending-actions">
                  <button
                    type="button"
                    class="link-button"
                    onClick={() => model.retryPost(id, p.clientId)}
                  >
                    {t.retry}
                  </button>
                  <button
                    type="button"
                    class="link-button"
                    onClick={() => model.discardPost(id, p.clientId)}
                  >
                    {t.discard}
                  </button>
                </div>
              )}
            </li>
          ))}
        </ol>
      </div>
    </div>
  );
}

function Names({ list }: { list: { name: string; displayName: string }[] | undefined }) {
  if (!list || list.length === 0) return <span class="muted">—</span>;
  return (
    <ul class="names">
      {list.map((p) => (
        <li key={p.name} title={p.name}>
          {p.displayName}
        </li>
      ))}
    </ul>
  );
}

function RoomInfo({ room, rs }: { room: RoomView; rs: RoomState }) {
  const roster = rs.roster;
  return (
    <aside id="room-info" class="room-info" aria-label={t.roomInfo}>
      <h2>{t.roomInfo}</h2>
      <dl>
        <dt>{t.description}</dt>
        <dd>{room.description || '—'}</dd>
        <dt>{t.category}</dt>
        <dd>{room.category.name}</dd>
        <dt>{t.privacy}</dt>
        <dd>{t[room.privacy]}</dd>
        <dt>{t.type}</dt>
        <dd>{t[room.type]}</dd>
        <dt>{t.managers}</dt>
        <dd>
          <Names list={room.managers} />
        </dd>
        {room.type === 'auditorium' && (
          <>
            <dt>{t.presenters}</dt>
            <dd>
              <Names list={room.presenters} />
            </dd>
          </>
        )}
        <dt>{t.membersList}</dt>
        <dd>{t.members(room.memberCount)}</dd>
      </dl>
      <h3>{t.roster}</h3>
      {roster?.suppressed ? (
        <p data-testid="roster-count">{t.rosterSuppressed(roster.count)}</p>
      ) : (
        <div data-testid="roster">
          <Names list={roster?.users} />
        </div>
      )}
    </aside>
  );
}

export function goToRoom(id: number): void {
  navigate(`/rooms/${id}`);
}
