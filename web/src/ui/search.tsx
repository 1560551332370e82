import { useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import { errorText, t } from '../i18n.js';
import type { RoomView, SearchReply } from '../types.js';
import { ModelContext, useModel } from './hooks.js';
import { MessageCard } from './message.js';

/** Another pool's answer to a search: its results, or why it could not be searched. */
type OtherPool = { pool: string; reply: SearchReply } | { pool: string; failed: string };

export function Search() {
  const [model, state] = useModel();
  const [query, setQuery] = useState('');
  const [authors, setAuthors] = useState('');
  const [room, setRoom] = useState('');
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [result, setResult] = useState<SearchReply | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  /**
   * Other pools' answers to the same search (not when one room of this pool is chosen): their
   * results, or why a pool could not be searched.
   */
  const [others, setOthers] = useState<OtherPool[]>([]);

  const [found, setFound] = useState<Map<number, string>>(new Map());
  const names = new Map<number, string>(found);
  for (const f of state.follows) names.set(f.roomId, f.name);
  for (const r of state.rooms.values()) if (r.room) names.set(r.id, r.room.name);

  /** Names of the rooms in the results that this page does not know yet. */
  async function nameRooms(reply: SearchReply) {
    const unknown = [...new Set(reply.messages.map((m) => m.roomId))].filter(
      (id) => !names.has(id),
    );
    const more = new Map(found);
    for (const roomId of unknown) {
      try {
        const r = await model.request<{ room: RoomView }>('room_get', { roomId });
        more.set(roomId, r.room.name);
      } catch {
        // Shown by number.
      }
    }
    if (unknown.length) setFound(more);
  }

  async function submit(e: Event) {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      const list = authors
        .split(',')
        .map((a) => a.trim())
        .filter(Boolean);
      const reply = await model.request<SearchReply>('search', {
        query: query.trim() || undefined,
        authors: list.length ? list : undefined,
        rooms: room ? [Number(room)] : undefined,
        from: from || undefined,
        to: to || undefined,
        limit: 50,
      });
      await nameRooms(reply);
      setResult(reply);
      setOthers(room ? [] : await searchOtherPools(list));
    } catch (err) {
      const e2 =
        err instanceof ApiError ? err : new ApiError({ code: 'error', message: String(err) });
      setError(errorText(e2.code, e2.message));
    } finally {
      setBusy(false);
    }
  }

  /**
   * Asks every other pool, whether or not the pools are known yet: they are learned in the
   * background after the page opens (Model.discoverPools), and a search made before that ended
   * used to leave them out. A pool that does not know the user is left out; one that could not
   * be reached is named. A server that is not in a pool answers pool_not_found: no other pools.
   */
  async function searchOtherPools(list: string[]): Promise<OtherPool[]> {
    const q = new URLSearchParams({ limit: '50' });
    if (query.trim()) q.set('query', query.trim());
    if (list.length) q.set('authors', list.join(','));
    if (from) q.set('from', from);
    if (to) q.set('to', to);
    try {
      const reply = await model.http<{ pools: { pool: string; status: number; body: unknown }[] }>(
        'GET',
        `/all-pools/search/messages?${q.toString()}`,
      );
      // The first answer is this pool's own, shown above.
      return reply.pools.slice(1).flatMap((p): OtherPool[] => {
        if (p.status === 200) return [{ pool: p.pool, reply: p.body as SearchReply }];
        if (p.status < 500) return [];
        const body = p.body as { message?: unknown } | null;
        const why = typeof body?.message === 'string' ? body.message : `HTTP ${p.status}`;
        return [{ pool: p.pool, failed: why }];
      });
    } catch {
      return [];
    }
  }

  return (
    <section class="page" aria-labelledby="search-title">
      <h1 id="search-title">{t.search}</h1>
      <form class="search-form" role="search" onSubmit={(e) => void submit(e)}>
        <label class="grow">
          {t.query}
          <input
            type="search"
            name="query"
            value={query}
            onInput={(e) => setQuery(e.currentTarget.value)}
          />
        </label>
        <label>
          {t.authors}
          <input
            name="authors"
            value={authors}
            onInput={(e) => setAuthors(e.currentTarget.value)}
          />
        </label>
        <label>
          {t.room}
          <select name="room" value={room} onChange={(e) => setRoom(e.currentTarget.value)}>
            <option value="">{t.anyRoom}</option>
            {[...names].map(([id, name]) => (
              <option key={id} value={String(id)}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t.from}
          <input
            type="date"
            name="from"
            value={from}
            onInput={(e) => setFrom(e.currentTarget.value)}
          />
        </label>
        <label>
          {t.to}
          <input type="date" name="to" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
        </label>
        <button type="submit" class="primary" disabled={busy}>
          {t.search}
        </button>
      </form>
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      {result && (
        <>
          <p class="muted" role="status">
            {result.messages.length === 0
              ? t.noResults
              : t.results(result.count, result.exceededLimit)}
          </p>
          <ul class="search-results" data-testid="search-results">
            {result.messages.map((m) => (
              <MessageCard key={`${m.roomId}-${m.seq}`} m={m} roomName={names.get(m.roomId)} />
            ))}
          </ul>
        </>
      )}
      {others.map((other) => {
        const pool = other.pool;
        if ('failed' in other) {
          return (
            <section key={pool} class="pool-results" data-pool={pool}>
              <h2>{t.poolOf(pool)}</h2>
              <p class="form-error" role="alert">
                {t.poolNotSearched(pool, other.failed)}
              </p>
            </section>
          );
        }
        const reply = other.reply;
        const pm = model.forPool(pool);
        const poolNames = new Map(pm.state.follows.map((f) => [f.roomId, f.name]));
        return (
          <section key={pool} class="pool-results" data-pool={pool}>
            <h2>{t.poolOf(pool)}</h2>
            <p class="muted">
              {reply.messages.length === 0
                ? t.noResults
                : t.results(reply.count, reply.exceededLimit)}
            </p>
            <ModelContext.Provider value={pm}>
              <ul class="search-results" data-testid="pool-search-results">
                {reply.messages.map((m) => (
                  <MessageCard
                    key={`${m.roomId}-${m.seq}`}
                    m={m}
                    roomName={poolNames.get(m.roomId)}
                  />
                ))}
              </ul>
            </ModelContext.Provider>
          </section>
        );
      })}
    </section>
  );
}
