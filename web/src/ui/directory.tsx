import { useEffect, useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import { errorText, t } from '../i18n.js';
import { navigate } from '../router.js';
import type { Model } from '../model.js';
import type { CategoryView, RoomView } from '../types.js';
import { useModel } from './hooks.js';

/** What each other pool answered the same room search (`GET /api/v1/all-pools/rooms`). */
interface PoolRooms {
  pool: string;
  rooms: RoomView[] | null;
  error?: string;
}

export function Directory() {
  const [model, state] = useModel();
  const [text, setText] = useState('');
  const [category, setCategory] = useState('');
  const [categories, setCategories] = useState<CategoryView[]>([]);
  const [rooms, setRooms] = useState<RoomView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [others, setOthers] = useState<PoolRooms[]>([]);
  const online = state.status === 'online';

  useEffect(() => {
    model.http<CategoryView[]>('GET', '/categories').then(setCategories, () => setCategories([]));
  }, []);

  async function search(e?: Event) {
    e?.preventDefault();
    setError(null);
    try {
      const reply = await model.request<{ rooms: RoomView[] }>('room_search', {
        text: text.trim() || undefined,
        category: category ? Number(category) : undefined,
        includeDescription: true,
        limit: 100,
      });
      setRooms(reply.rooms);
      void searchOtherPools();
    } catch (err) {
      const e2 =
        err instanceof ApiError ? err : new ApiError({ code: 'error', message: String(err) });
      setError(errorText(e2.code, e2.message));
    }
  }

  /** The same words in every other pool (the category filter is this pool's own). */
  async function searchOtherPools() {
    if (state.pools.length === 0 || category) return setOthers([]);
    const q = new URLSearchParams({ includeDescription: 'true', limit: '100' });
    if (text.trim()) q.set('text', text.trim());
    try {
      const reply = await model.http<{ pools: { pool: string; status: number; body: unknown }[] }>(
        'GET',
        `/all-pools/rooms?${q.toString()}`,
      );
      setOthers(
        reply.pools
          .filter((p) => state.pools.includes(p.pool))
          .map((p) => {
            if (p.status === 200) return { pool: p.pool, rooms: p.body as RoomView[] };
            const e = (p.body as { error?: { code: string; message: string } } | null)?.error;
            return { pool: p.pool, rooms: null, error: errorText(e?.code ?? '', e?.message ?? '') };
          }),
      );
    } catch {
      setOthers([]);
    }
  }

  useEffect(() => {
    if (online) void search();
  }, [online, category, state.pools.join(',')]);

  const onError = (err: unknown) => {
    if (err instanceof ApiError) setError(errorText(err.code, err.message));
  };

  return (
    <section class="page" aria-labelledby="directory-title">
      <h1 id="directory-title">{t.directory}</h1>
      <form class="toolbar" role="search" onSubmit={(e) => void search(e)}>
        <label class="grow">
          <span class="visually-hidden">{t.searchRooms}</span>
          <input
            type="search"
            name="room-search"
            placeholder={t.searchRoomsPlaceholder}
            value={text}
            onInput={(e) => setText(e.currentTarget.value)}
          />
        </label>
        <label>
          <span class="visually-hidden">{t.category}</span>
          <select
            name="category"
            value={category}
            onChange={(e) => setCategory(e.currentTarget.value)}
          >
            <option value="">{t.allCategories}</option>
            {categories.map((c) => (
              <option key={c.id} value={String(c.id)}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" class="primary">
          {t.searchRooms}
        </button>
      </form>
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      {rooms && rooms.length === 0 && <p class="muted">{t.noRooms}</p>}
      {rooms && rooms.length > 0 && <RoomCards model={model} rooms={rooms} onError={onError} />}
      {others.map((p) => (
        <section key={p.pool} class="pool-results" data-pool={p.pool}>
          <h2>{t.inPool(p.pool)}</h2>
          {p.error && <p class="muted">{p.error}</p>}
          {p.rooms && p.rooms.length === 0 && <p class="muted">{t.noRooms}</p>}
          {p.rooms && p.rooms.length > 0 && (
            <RoomCards model={model.forPool(p.pool)} rooms={p.rooms} onError={onError} />
          )}
        </section>
      ))}
    </section>
  );
}

/** Room cards with open/join and follow buttons, for the rooms of one pool's model. */
function RoomCards({
  model,
  rooms,
  onError,
}: {
  model: Model;
  rooms: RoomView[];
  onError: (err: unknown) => void;
}) {
  const followed = new Set(model.state.follows.map((f) => f.roomId));
  return (
    <ul class="cards" data-testid="directory-results">
      {rooms.map((r) => (
        <li key={r.id} class="card room-card" data-room-id={r.id}>
          <div class="room-card-head">
            <h2>{r.name}</h2>
            <span class={`tag privacy-${r.privacy}`}>{t[r.privacy]}</span>
            {r.type === 'auditorium' && <span class="tag">{t.auditorium}</span>}
          </div>
          {r.description && <p>{r.description}</p>}
          <p class="muted small">
            {r.category.name} · {t.members(r.memberCount)}
          </p>
          <div class="card-actions">
            {r.my.canRead ? (
              <button type="button" class="primary" onClick={() => navigate(model.roomPath(r.id))}>
                {r.my.member || r.privacy !== 'open' ? t.openRoom : t.join}
              </button>
            ) : (
              <span class="muted small">{t.membersOnly}</span>
            )}
            <button
              type="button"
              class="secondary"
              aria-pressed={followed.has(r.id)}
              aria-label={`${followed.has(r.id) ? t.unfollow : t.follow} ${r.name}`}
              onClick={() => void model.follow(r.id, !followed.has(r.id)).catch(onError)}
            >
              {followed.has(r.id) ? t.unfollow : t.follow}
            </button>
          </div>
        </li>
      ))}
    </ul>
  );
}
