import { useEffect, useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import { errorText, t } from '../i18n.js';
import { feedQueries, matchesFeed, mergeMatches, type FeedRule } from '../logic.js';
import { MENTIONS_FEED, type Model } from '../model.js';
import type { MessageView, SearchReply, TopicFeedView } from '../types.js';
import { useModel } from './hooks.js';
import { Link } from './link.js';
import { MessageCard } from './message.js';

/** The search frame takes at most this many rooms; feeds search the first followed ones. */
const SEARCH_ROOMS = 200;

function splitKeywords(text: string): string[] {
  return text
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
}

/** Past matches of a feed: the server's search across followed rooms, filtered by the feed rule. */
async function pastMatches(model: Model, rule: FeedRule, roomIds: number[]) {
  let found: MessageView[] = [];
  for (const query of feedQueries(rule, model.me)) {
    const reply = await model.request<SearchReply>('search', {
      query,
      rooms: roomIds.slice(0, SEARCH_ROOMS),
      limit: 50,
    });
    found = mergeMatches(
      found,
      reply.messages.filter((m) => matchesFeed(rule, m, model.me)),
    );
  }
  return found;
}

/** One feed: earlier matches found by search, then live ones as they arrive. */
export function FeedPage({ feedKey }: { feedKey: string }) {
  const [model, state] = useModel();
  const feed =
    feedKey === MENTIONS_FEED ? undefined : state.feeds.find((f) => String(f.id) === feedKey);
  const rule: FeedRule | undefined =
    feedKey === MENTIONS_FEED
      ? { kind: 'mentions' }
      : feed && { kind: 'keywords', keywords: feed.keywords };
  const roomIds = state.follows.map((f) => f.roomId);
  const online = state.status === 'online';
  const [past, setPast] = useState<MessageView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const live = state.feedMatches.get(feedKey) ?? [];

  const ruleKey = JSON.stringify(rule ?? null);
  useEffect(() => {
    setPast(null);
    setError(null);
    if (!rule || !online || roomIds.length === 0) return;
    let current = true;
    pastMatches(model, rule, roomIds).then(
      (found) => current && setPast(found),
      (err: unknown) =>
        current &&
        setError(err instanceof ApiError ? errorText(err.code, err.message) : String(err)),
    );
    return () => {
      current = false;
    };
  }, [ruleKey, online, roomIds.join(',')]);

  // Looking at the feed clears its badge, also for matches that arrive while it is open.
  useEffect(() => {
    if (document.visibilityState === 'visible') model.markFeedSeen(feedKey);
  }, [feedKey, live.length]);

  if (!rule) {
    return (
      <section class="page">
        <p role="alert">{state.feeds.length ? t.feed_not_found : t.loadingMatches}</p>
        <Link href="/feeds">{t.manageFeeds}</Link>
      </section>
    );
  }

  const names = new Map(state.follows.map((f) => [f.roomId, f.name]));
  const matches = mergeMatches<MessageView>(past ?? [], live);
  return (
    <section class="page" aria-labelledby="feed-title">
      <h1 id="feed-title">{feed ? feed.name : t.mentionsFeed}</h1>
      <p class="muted">
        {feed
          ? t.feedKeywordsHint(feed.keywords.map((k) => `“${k}”`).join(', '))
          : t.mentionsFeedHint(model.me)}{' '}
        <Link href="/feeds">{t.manageFeeds}</Link>
      </p>
      {roomIds.length === 0 && <p class="muted">{t.followToFeed}</p>}
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      {past === null && roomIds.length > 0 && !error && (
        <p class="muted small" role="status">
          {t.loadingMatches}
        </p>
      )}
      {matches.length === 0 && past !== null && <p class="muted">{t.noMatches}</p>}
      <ul class="search-results" data-testid="feed-matches" aria-live="polite">
        {matches.map((m) => (
          <MessageCard key={`${m.roomId}-${m.seq}`} m={m} roomName={names.get(m.roomId)} />
        ))}
      </ul>
    </section>
  );
}

/** Your feeds: add, edit and delete keyword feeds; browser notifications on or off. */
export function FeedsPage() {
  const [, state] = useModel();
  return (
    <section class="page" aria-labelledby="feeds-title">
      <h1 id="feeds-title">{t.feeds}</h1>
      <Notifications />
      <h2>{t.yourFeeds}</h2>
      <ul class="feed-list" data-testid="feed-list">
        <li class="card">
          <Link href={`/feeds/${MENTIONS_FEED}`}>{t.mentionsFeed}</Link>
        </li>
        {state.feeds.map((f) => (
          <FeedItem key={f.id} feed={f} />
        ))}
      </ul>
      {state.feeds.length === 0 && <p class="muted">{t.noFeeds}</p>}
      <FeedForm />
    </section>
  );
}

function Notifications() {
  const [model, state] = useModel();
  const [answer, setAnswer] = useState<string | null>(null);
  const supported = typeof Notification !== 'undefined';
  return (
    <div class="notify-setting">
      <h2>{t.notifications}</h2>
      <p class="muted small">{t.notificationsHint}</p>
      {!supported ? (
        <p class="muted">{t.notificationsUnsupported}</p>
      ) : (
        <button
          type="button"
          class="secondary"
          aria-pressed={state.notify}
          onClick={() => {
            // Called in the click handler: browsers ask for permission only on a user gesture.
            void model.setNotify(!state.notify).then((p) => {
              if (p === 'denied') setAnswer(t.notificationsBlocked);
              else setAnswer(null);
            });
          }}
        >
          {state.notify ? t.notificationsOff : t.notificationsOn}
        </button>
      )}
      <p role="status" class="small" data-testid="notify-status">
        {answer ?? (state.notify ? t.notificationsEnabled : '')}
      </p>
    </div>
  );
}

type FeedField = 'name' | 'keywords' | 'form';

/** Which field a server error is about. */
function feedFieldOf(err: ApiError): FeedField {
  if (err.code === 'feed_name_taken') return 'name';
  const issues = err.details?.issues;
  if (Array.isArray(issues)) {
    const path = String((issues[0] as { path?: unknown } | undefined)?.path ?? '').split('.')[0];
    if (path === 'name' || path === 'keywords') return path;
  }
  return 'form';
}

function FeedForm({ feed, onDone }: { feed?: TopicFeedView; onDone?: () => void }) {
  const [model] = useModel();
  const [name, setName] = useState(feed?.name ?? '');
  const [keywords, setKeywords] = useState(feed?.keywords.join(', ') ?? '');
  const [errors, setErrors] = useState<Partial<Record<FeedField, string>>>({});
  const [busy, setBusy] = useState(false);
  const idBase = feed ? `feed-${feed.id}` : 'feed-new';

  async function submit(e: Event) {
    e.preventDefault();
    setErrors({});
    setBusy(true);
    try {
      const list = splitKeywords(keywords);
      if (feed) await model.updateFeed(feed.id, { name, keywords: list });
      else await model.createFeed(name, list);
      setName('');
      setKeywords('');
      onDone?.();
    } catch (err) {
      const e2 =
        err instanceof ApiError ? err : new ApiError({ code: 'error', message: String(err) });
      const text = errorText(e2.code, e2.message);
      setErrors({ [feedFieldOf(e2)]: text });
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="feed-form" onSubmit={(e) => void submit(e)} data-testid={`${idBase}-form`}>
      <label>
        {t.feedName}
        <input
          name="feed-name"
          value={name}
          maxLength={64}
          required
          aria-invalid={errors.name ? true : undefined}
          aria-describedby={errors.name ? `${idBase}-name-error` : undefined}
          onInput={(e) => setName(e.currentTarget.value)}
        />
      </label>
      {errors.name && (
        <p class="field-error" id={`${idBase}-name-error`} data-testid="feed-name-error">
          {errors.name}
        </p>
      )}
      <label>
        {t.feedKeywords}
        <input
          name="feed-keywords"
          value={keywords}
          required
          aria-invalid={errors.keywords ? true : undefined}
          aria-describedby={errors.keywords ? `${idBase}-keywords-error` : undefined}
          onInput={(e) => setKeywords(e.currentTarget.value)}
        />
      </label>
      {errors.keywords && (
        <p class="field-error" id={`${idBase}-keywords-error`} data-testid="feed-keywords-error">
          {errors.keywords}
        </p>
      )}
      {errors.form && (
        <p class="form-error" role="alert">
          {errors.form}
        </p>
      )}
      <div class="row">
        <button type="submit" class="primary" disabled={busy}>
          {feed ? t.save : t.addFeed}
        </button>
        {onDone && (
          <button type="button" class="secondary" onClick={onDone}>
            {t.cancel}
          </button>
        )}
      </div>
    </form>
  );
}

function FeedItem({ feed }: { feed: TopicFeedView }) {
  const [model] = useModel();
  const [editing, setEditing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (editing) {
    return (
      <li class="card">
        <FeedForm feed={feed} onDone={() => setEditing(false)} />
      </li>
    );
  }
  return (
    <li class="card feed-item">
      <div>
        <Link href={`/feeds/${feed.id}`}>{feed.name}</Link>
        <p class="muted small">{feed.keywords.join(', ')}</p>
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
      </div>
      <div class="row">
        <button
          type="button"
          class="secondary"
          aria-label={t.editFeed(feed.name)}
          onClick={() => setEditing(true)}
        >
          {t.editButton}
        </button>
        <button
          type="button"
          class="secondary"
          aria-label={t.deleteFeed(feed.name)}
          onClick={() =>
            void model
              .deleteFeed(feed.id)
              .catch((err: unknown) =>
                setError(err instanceof ApiError ? errorText(err.code, err.message) : String(err)),
              )
          }
        >
          {t.deleteButton}
        </button>
      </div>
    </li>
  );
}
