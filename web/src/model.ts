import { activeServers, api, ApiError } from './api.js';
import {
  countMessage,
  joinRequests,
  matchesFeed,
  mergeMatches,
  mergeMessages,
  unread,
  type FeedRule,
  type FollowCounts,
} from './logic.js';
import { ChatSocket, type ConnectionStatus } from './socket.js';
import type {
  AuthReply,
  BjoinEntry,
  HistoryReply,
  InvitationView,
  JoinReply,
  MessageView,
  RoomView,
  RosterInfo,
  ServerEvent,
  ServerLimits,
  Session,
  TopicFeedView,
} from './types.js';

const SESSION_KEY = 'perch.session';
const NOTIFY_KEY = 'perch.notify';
/** The built-in feed of messages that mention you. */
export const MENTIONS_FEED = 'mentions';
const PAGE = 50;

export interface PendingPost {
  clientId: string;
  text: string;
  title?: string;
  alert?: boolean;
  status: 'sending' | 'failed';
  error?: string;
}

/** A file being uploaded into a room, or one the server refused (shown until dismissed). */
export interface UploadState {
  clientId: string;
  name: string;
  status: 'uploading' | 'failed';
  error?: { code: string; message: string; details?: Record<string, unknown> };
}

export interface RoomState {
  id: number;
  room?: RoomView;
  messages: MessageView[];
  loaded: boolean;
  hasOlder: boolean;
  loadingOlder: boolean;
  lastSeen: number;
  /** Joined on the current connection. */
  joined: boolean;
  /** Opened during this session: kept joined across reconnects. */
  open: boolean;
  roster?: RosterInfo;
  pending: PendingPost[];
  uploads: UploadState[];
  error?: { code: string; message: string };
}

export interface State {
  session: Session | null;
  status: ConnectionStatus;
  retryAt?: number;
  limits?: ServerLimits;
  follows: FollowCounts[];
  rooms: Map<number, RoomState>;
  invitations: InvitationView[];
  /** Your keyword feeds, as stored on the server. */
  feeds: TopicFeedView[];
  /**
   * Feed matches that arrived during this session, by feed key (`mentions` or the feed's id),
   * newest first; past ones are searched when a feed is opened.
   */
  feedMatches: Map<string, FeedMatch[]>;
  /** When each feed was last looked at (ms): later matches count as new. */
  feedSeen: Map<string, number>;
  /** The user turned browser notifications on (and the browser allowed them). */
  notify: boolean;
  /**
   * Other pools of an Enterprise Edition deployment whose directory has this user (the home
   * model only; empty on a Standard Edition server).
   */
  pools: string[];
  notice?: string;
}

export interface ModelOptions {
  /**
   * Another pool of the deployment: this model then speaks with that pool through the home front
   * end (`/ws/pool/{name}`, `/api/v1/remote/{name}/...`) with the home session.
   */
  pool?: string;
}

/**
 * The client's state and the rules that keep it in step with the server: one instance per page
 * for the home pool, and one per other pool whose rooms the user opens or follows (`forPool`).
 * Components read `state` and re-render on `subscribe`; all changes go through methods here.
 */
export class Model {
  state: State;
  /** The other pool this model speaks with, or undefined for the home pool. */
  readonly pool: string | undefined;
  /** Models of the other pools (the home model only). */
  private readonly others = new Map<string, Model>();
  private socket: ChatSocket | null = null;
  /** The front end the HTTP API calls go to: '' (the page's own) or an active one of its pool. */
  private server = '';
  private readonly listeners = new Set<() => void>();
  private readonly markedRead = new Map<number, number>();

  constructor(
    private readonly storage: Storage,
    opts: ModelOptions = {},
  ) {
    this.pool = opts.pool;
    this.state = {
      session: readSession(storage),
      status: 'stopped',
      follows: [],
      rooms: new Map(),
      invitations: [],
      feeds: [],
      feedMatches: new Map(),
      feedSeen: new Map(),
      notify: storage.getItem(NOTIFY_KEY) === '1' && notificationPermission() === 'granted',
      pools: [],
    };
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }

  private update(patch: Partial<State>): void {
    this.state = { ...this.state, ...patch };
    this.changed();
  }

  private room(id: number): RoomState {
    let rs = this.state.rooms.get(id);
    if (!rs) {
      rs = {
        id,
        messages: [],
        loaded: false,
        hasOlder: false,
        loadingOlder: false,
        lastSeen: 0,
        joined: false,
        open: false,
        pending: [],
        uploads: [],
      };
      this.state.rooms.set(id, rs);
    }
    return rs;
  }

  private patchRoom(id: number, patch: Partial<RoomState>): RoomState {
    const next = { ...this.room(id), ...patch };
    const rooms = new Map(this.state.rooms);
    rooms.set(id, next);
    this.state = { ...this.state, rooms };
    this.changed();
    return next;
  }

  /** The page of one of this model's rooms (`rest`: `/settings`, `?seq=N`, ...). */
  roomPath(id: number, rest = ''): string {
    const prefix = this.pool === undefined ? '' : `/pools/${encodeURIComponent(this.pool)}`;
    return `${prefix}/rooms/${id}${rest}`;
  }

  /** The model of another pool's rooms, connected on first use (from the home model). */
  forPool(name: string): Model {
    if (this.pool !== undefined) throw new Error('forPool is for the home model');
    let m = this.others.get(name);
    if (!m) {
      m = new Model(this.storage, { pool: name });
      this.others.set(name, m);
      m.subscribe(() => this.changed());
      m.connect();
    }
    return m;
  }

  /** Models of the other pools opened so far. */
  poolModels(): Model[] {
    return [...this.others.values()];
  }

  /**
   * Learns which other pools know this user, and connects to each where the user follows rooms,
   * so that those rooms count unread messages live.
   */
  private async discoverPools(): Promise<void> {
    if (this.pool !== undefined) return;
    let reply: { pools: { pool: string; status: number; body: unknown }[] };
    try {
      reply = await this.http('GET', '/all-pools/me/follows');
    } catch {
      return; // A Standard Edition server, or a pool alone: no other pools.
    }
    const [home, ...rest] = reply.pools;
    if (!home) return;
    const pools = rest.filter((p) => p.status === 200).map((p) => p.pool);
    this.update({ pools });
    for (const p of rest)
      if (p.status === 200 && Array.isArray(p.body) && p.body.length > 0) this.forPool(p.pool);
  }

  get me(): string {
    return this.state.session?.user.name ?? '';
  }

  // --- session ---------------------------------------------------------------------------

  async signIn(login: string, password: string): Promise<void> {
    const session = await api<Session>(null, 'POST', '/sessions', { login, password });
    this.storage.setItem(SESSION_KEY, JSON.stringify(session));
    this.update({ session, notice: undefined });
    this.connect();
  }

  async signOut(): Promise<void> {
    const token = this.state.session?.token ?? null;
    this.reset();
    if (token) await api(token, 'DELETE', '/sessions/current').catch(() => undefined);
  }

  private reset(notice?: string): void {
    this.socket?.stop();
    this.socket = null;
    for (const m of this.others.values()) m.socket?.stop();
    this.others.clear();
    // The home model owns the session: another pool's model only stops.
    if (this.pool !== undefined) return this.update({ status: 'stopped' });
    this.storage.removeItem(SESSION_KEY);
    this.storage.removeItem(NOTIFY_KEY);
    this.markedRead.clear();
    this.state = {
      session: null,
      status: 'stopped',
      follows: [],
      rooms: new Map(),
      invitations: [],
      feeds: [],
      feedMatches: new Map(),
      feedSeen: new Map(),
      notify: false,
      notice,
      pools: [],
    };
    this.changed();
  }

  /** Opens the WebSocket for the stored session (called at start-up and after sign-in). */
  connect(): void {
    const session = this.state.session;
    if (!session || this.socket) return;
    if (session.expiresAt <= Date.now()) return this.reset('session_ended');
    const path = this.pool === undefined ? '/ws' : `/ws/pool/${encodeURIComponent(this.pool)}`;
    this.socket = new ChatSocket(
      session.token,
      {
        status: (status, retryAt) => {
          if (status !== 'online' && status !== 'syncing') this.markJoinedFalse();
          this.update({ status, retryAt });
        },
        ready: (auth) => this.resync(auth),
        event: (e) => this.onEvent(e),
        sessionEnded: (reason) => this.reset(reason),
        server: (server) => {
          this.server = server;
        },
      },
      path,
    );
    this.socket.start();
  }

  retryNow(): void {
    this.socket?.retryNow();
  }

  /** Sends a frame; rejects with ApiError (code `disconnected` when offline). */
  request<T>(...args: Parameters<ChatSocket['request']>): Promise<T> {
    if (!this.socket)
      return Promise.reject(new ApiError({ code: 'disconnected', message: 'not connected' }));
    return this.socket.request(...args) as Promise<T>;
  }

  /**
   * Calls the HTTP API with the session's token, on the server the socket signed in on. Refused
   * by an idle front end of a pool, it asks an active one it named instead.
   */
  async http<T>(method: string, apiPath: string, body?: unknown): Promise<T> {
    const token = this.state.session?.token ?? null;
    const path =
      this.pool === undefined ? apiPath : `/remote/${encodeURIComponent(this.pool)}${apiPath}`;
    try {
      return await api<T>(token, method, path, body, this.server);
    } catch (err) {
      const [active] = activeServers(err);
      if (active === undefined) throw err;
      this.server = active;
      return api<T>(token, method, path, body, active);
    }
  }

  private markJoinedFalse(): void {
    let any = false;
    const rooms = new Map(this.state.rooms);
    for (const [id, rs] of rooms)
      if (rs.joined) {
        rooms.set(id, { ...rs, joined: false });
        any = true;
      }
    if (any) this.state = { ...this.state, rooms };
  }

  // --- (re)connect: catch up ---------------------------------------------------------------

  /**
   * After each auth: refresh follow counts, then join every followed or opened room from where
   * this client left off, so the server sends exactly the messages it missed; then re-send posts
   * that never got an answer (same clientId, so none is posted twice).
   */
  private async resync(auth: AuthReply): Promise<void> {
    const session = this.state.session;
    if (session) session.user = auth.user;
    if (!auth.chatEnabled) {
      this.update({ limits: auth.server.limits, notice: 'chat_disabled' });
      return;
    }
    this.update({ limits: auth.server.limits });
    await this.refreshFollows();
    void this.discoverPools();
    void this.refreshInvitations();
    void this.refreshFeeds();
    const followed = new Map(this.state.follows.map((f) => [f.roomId, f]));
    const ids = new Set<number>(followed.keys());
    for (const rs of this.state.rooms.values()) if (rs.open) ids.add(rs.id);
    const requests = joinRequests(
      [...ids].map((id) => {
        const rs = this.state.rooms.get(id);
        return {
          roomId: id,
          lastSeen: rs?.lastSeen ?? 0,
          loaded: rs?.loaded ?? false,
          followedLastSeq: followed.get(id)?.lastSeq,
        };
      }),
    );
    for (let i = 0; i < requests.length; i += 500) {
      const chunk = requests.slice(i, i + 500);
      const reply = await this.request<{ results: BjoinEntry[] }>('bjoin', { rooms: chunk });
      reply.results.forEach((r, j) => this.applyJoin(r, chunk[j]?.since));
    }
    for (const rs of this.state.rooms.values())
      for (const p of rs.pending) if (p.status === 'sending') void this.sendPost(rs.id, p);
  }

  private applyJoin(r: BjoinEntry, since: number | undefined): void {
    if (!r.ok) {
      this.patchRoom(r.roomId, { joined: false, error: r.error });
      return;
    }
    const rs = this.room(r.roomId);
    const messages = mergeMessages(rs.messages, r.messages);
    const latestPage = since === undefined;
    this.patchRoom(r.roomId, {
      room: r.room,
      roster: r.roster,
      joined: true,
      error: undefined,
      messages,
      loaded: rs.loaded || latestPage,
      hasOlder: latestPage && !rs.loaded ? r.more : rs.hasOlder,
      lastSeen: Math.max(rs.lastSeen, since ?? 0, messages.at(-1)?.seq ?? 0),
    });
    this.settlePending(r.roomId);
    for (const m of r.messages) this.countFollowed(m);
  }

  async refreshFollows(): Promise<void> {
    const reply = await this.request<{ follows: FollowCounts[] }>('follows', {});
    this.update({ follows: sortFollows(reply.follows) });
  }

  async refreshInvitations(): Promise<void> {
    try {
      const reply = await this.request<{ invitations: InvitationView[] }>('invitations', {
        all: true,
      });
      this.update({ invitations: reply.invitations });
    } catch {
      // Shown as empty; the next reconnect or invitation event tries again.
    }
  }

  // --- live events -------------------------------------------------------------------------

  private onEvent(e: ServerEvent): void {
    switch (e.type) {
      case 'message': {
        const rs = this.room(e.roomId);
        if (e.message.seq <= rs.lastSeen && rs.messages.some((m) => m.seq === e.message.seq))
          return;
        this.patchRoom(e.roomId, {
          messages: mergeMessages(rs.messages, [e.message]),
          lastSeen: Math.max(rs.lastSeen, e.message.seq),
        });
        this.settlePending(e.roomId);
        this.countFollowed(e.message);
        return;
      }
      case 'message_changed': {
        const rs = this.room(e.roomId);
        if (rs.messages.some((m) => m.seq === e.message.seq))
          this.patchRoom(e.roomId, { messages: mergeMessages(rs.messages, [e.message]) });
        return;
      }
      case 'room_cleared': {
        const rs = this.room(e.roomId);
        this.patchRoom(e.roomId, { messages: rs.messages.filter((m) => m.ts > e.upTo) });
        return;
      }
      case 'room_changed':
        void this.reloadRoom(e.roomId);
        return;
      case 'roster': {
        const roster = this.room(e.roomId).roster;
        if (!roster || roster.suppressed) return;
        const users = (roster.users ?? []).filter((u) => u.id !== e.user.id);
        if (e.event === 'join') users.push(e.user);
        this.patchRoom(e.roomId, { roster: { ...roster, users, count: users.length } });
        return;
      }
      case 'removed':
        this.patchRoom(e.roomId, {
          joined: false,
          open: false,
          error: { code: e.reason, message: e.reason },
        });
        void this.refreshFollows().catch(() => undefined);
        return;
      case 'invitation':
        this.update({
          invitations: [
            e.invitation,
            ...this.state.invitations.filter((i) => i.id !== e.invitation.id),
          ],
        });
        return;
      case 'bye':
        return;
    }
  }

  private countFollowed(m: MessageView): void {
    const i = this.state.follows.findIndex((f) => f.roomId === m.roomId);
    if (i < 0) return;
    if (m.seq > this.state.follows[i]!.lastSeq) this.matchFeeds(m);
    const next = countMessage(this.state.follows[i]!, m, this.me);
    if (next === this.state.follows[i]) return;
    const follows = this.state.follows.slice();
    follows[i] = next;
    this.update({ follows });
  }

  // --- topic feeds -------------------------------------------------------------------------

  /** Every feed as a key and its matching rule: mentions first, then yours from the server. */
  feedRules(): { key: string; rule: FeedRule }[] {
    return [
      { key: MENTIONS_FEED, rule: { kind: 'mentions' } },
      ...this.state.feeds.map((f) => ({
        key: String(f.id),
        rule: { kind: 'keywords', keywords: f.keywords } as const,
      })),
    ];
  }

  async refreshFeeds(): Promise<void> {
    try {
      this.update({ feeds: await this.http<TopicFeedView[]>('GET', '/me/feeds') });
    } catch {
      // Kept as they were; the next reconnect tries again.
    }
  }

  async createFeed(name: string, keywords: string[]): Promise<TopicFeedView> {
    const feed = await this.http<TopicFeedView>('POST', '/me/feeds', { name, keywords });
    this.update({ feeds: [...this.state.feeds.filter((f) => f.id !== feed.id), feed] });
    return feed;
  }

  async updateFeed(id: number, patch: { name?: string; keywords?: string[] }): Promise<void> {
    const feed = await this.http<TopicFeedView>('PATCH', `/me/feeds/${id}`, patch);
    const feedMatches = new Map(this.state.feedMatches);
    // New keywords: what matched before may not match now.
    if (patch.keywords) feedMatches.delete(String(id));
    this.update({ feeds: this.state.feeds.map((f) => (f.id === id ? feed : f)), feedMatches });
  }

  async deleteFeed(id: number): Promise<void> {
    await this.http('DELETE', `/me/feeds/${id}`);
    const feedMatches = new Map(this.state.feedMatches);
    feedMatches.delete(String(id));
    this.update({ feeds: this.state.feeds.filter((f) => f.id !== id), feedMatches });
  }

  /** New matches of a feed: those that arrived after it was last looked at. */
  newMatches(key: string): number {
    const seen = this.state.feedSeen.get(key) ?? 0;
    return (this.state.feedMatches.get(key) ?? []).filter((m) => m.receivedAt > seen).length;
  }

  markFeedSeen(key: string): void {
    if (this.newMatches(key) === 0) return;
    const feedSeen = new Map(this.state.feedSeen);
    feedSeen.set(key, Date.now());
    this.update({ feedSeen });
  }

  /**
   * Turns browser notifications on or off. Asking for permission must happen in a click handler
   * (a user gesture), so only the settings button calls this.
   */
  async setNotify(on: boolean): Promise<NotificationPermission | 'unsupported'> {
    if (!on) {
      this.storage.removeItem(NOTIFY_KEY);
      this.update({ notify: false });
      return notificationPermission();
    }
    if (typeof Notification === 'undefined') return 'unsupported';
    const permission =
      Notification.permission === 'default'
        ? await Notification.requestPermission()
        : Notification.permission;
    const notify = permission === 'granted';
    if (notify) this.storage.setItem(NOTIFY_KEY, '1');
    this.update({ notify });
    return permission;
  }

  /** A new message in a followed room: adds it to every feed it matches, and may notify. */
  private matchFeeds(m: MessageView): void {
    let feedMatches: Map<string, FeedMatch[]> | undefined;
    const hits: string[] = [];
    for (const { key, rule } of this.feedRules()) {
      if (!matchesFeed(rule, m, this.me)) continue;
      feedMatches ??= new Map(this.state.feedMatches);
      const list = feedMatches.get(key) ?? [];
      if (list.some((x) => x.roomId === m.roomId && x.seq === m.seq)) continue;
      feedMatches.set(key, mergeMatches<FeedMatch>(list, [{ ...m, receivedAt: Date.now() }]));
      hits.push(key);
    }
    if (!feedMatches || hits.length === 0) return;
    this.update({ feedMatches });
    this.notifyMatch(m, hits[0]!);
  }

  private notifyMatch(m: MessageView, key: string): void {
    if (!this.state.notify || notificationPermission() !== 'granted') return;
    // No notification for what is on screen already.
    const looking =
      document.visibilityState === 'visible' &&
      (location.pathname === this.roomPath(m.roomId) || location.pathname === `/feeds/${key}`);
    if (looking) return;
    const room = this.state.follows.find((f) => f.roomId === m.roomId)?.name ?? '';
    const feed =
      key === MENTIONS_FEED ? null : this.state.feeds.find((f) => String(f.id) === key)?.name;
    try {
      const n = new Notification(`${m.author.displayName} · ${room}`, {
        body: (m.title ? `${m.title}: ${m.text}` : m.text).slice(0, 200),
        tag: `perch-${m.roomId}-${m.seq}`,
        data: { feed },
      });
      n.onclick = () => {
        window.focus();
        location.assign(this.roomPath(m.roomId, `?seq=${m.seq}`));
      };
    } catch {
      // Some browsers only notify from a service worker; the badge still counts.
    }
  }

  // --- rooms -------------------------------------------------------------------------------

  /** Opens a room: joins it (latest page) or, if already joined for counting, loads its page. */
  async openRoom(id: number): Promise<void> {
    const rs = this.patchRoom(id, { open: true });
    if (this.state.status !== 'online' && this.state.status !== 'syncing') return;
    try {
      if (!rs.joined) {
        const since = rs.loaded || rs.lastSeen > 0 ? rs.lastSeen : undefined;
        const reply = await this.request<JoinReply>('join', { roomId: id, since });
        this.applyJoin(reply, since);
      }
      if (!this.room(id).loaded) {
        const page = await this.request<HistoryReply>('history', { roomId: id, limit: PAGE });
        const cur = this.room(id);
        const messages = mergeMessages(cur.messages, page.messages);
        this.patchRoom(id, {
          messages,
          loaded: true,
          hasOlder: page.more,
          lastSeen: Math.max(cur.lastSeen, messages.at(-1)?.seq ?? 0),
        });
      }
    } catch (err) {
      const e =
        err instanceof ApiError ? err : new ApiError({ code: 'error', message: String(err) });
      if (e.code === 'disconnected') return;
      this.patchRoom(id, { error: { code: e.code, message: e.message } });
      // A room one may find but not read (closed, not a member): still show what it is.
      if (e.code === 'forbidden') await this.reloadRoom(id);
    }
  }

  /** Loads the page of history before the oldest message held; false when there is none. */
  async loadOlder(id: number): Promise<boolean> {
    const rs = this.room(id);
    const oldest = rs.messages[0];
    if (!rs.hasOlder || rs.loadingOlder || !oldest) return false;
    this.patchRoom(id, { loadingOlder: true });
    try {
      const page = await this.request<HistoryReply>('history', {
        roomId: id,
        before: oldest.seq,
        limit: PAGE,
      });
      const cur = this.room(id);
      this.patchRoom(id, {
        messages: mergeMessages(cur.messages, page.messages),
        hasOlder: page.more,
        loadingOlder: false,
      });
      return true;
    } catch {
      this.patchRoom(id, { loadingOlder: false });
      return false;
    }
  }

  async reloadRoom(id: number): Promise<void> {
    try {
      const reply = await this.request<{ room: RoomView; roster: RosterInfo }>('room_get', {
        roomId: id,
      });
      const rs = this.room(id);
      this.patchRoom(id, {
        room: reply.room,
        roster: rs.joined ? (rs.roster ?? reply.roster) : reply.roster,
      });
    } catch {
      // Keeps what is shown; a join error, if any, is already on the room.
    }
  }

  /** Records the room as read up to its newest message (followed rooms only). */
  markRead(id: number): void {
    const f = this.state.follows.find((x) => x.roomId === id);
    const rs = this.state.rooms.get(id);
    if (!f || !rs || this.state.status !== 'online') return;
    const seq = Math.max(rs.lastSeen, f.lastSeq);
    if (unread(f) === 0 && f.mentions === 0) return;
    if ((this.markedRead.get(id) ?? -1) >= seq) return;
    this.markedRead.set(id, seq);
    this.update({
      follows: this.state.follows.map((x) =>
        x.roomId === id ? { ...x, lastReadSeq: seq, lastSeq: seq, mentions: 0 } : x,
      ),
    });
    this.request('mark_read', { roomId: id, seq }).catch(() => this.markedRead.delete(id));
  }

  async follow(id: number, on: boolean): Promise<void> {
    await this.request(on ? 'follow' : 'unfollow', { roomId: id });
    if (on) {
      // Join it so that its new messages count as unread from now on.
      await this.refreshFollows();
      const rs = this.room(id);
      if (!rs.joined) {
        const f = this.state.follows.find((x) => x.roomId === id);
        const since = rs.loaded || rs.lastSeen > 0 ? rs.lastSeen : (f?.lastSeq ?? 0);
        const reply = await this.request<JoinReply>('join', { roomId: id, since });
        this.applyJoin(reply, since);
      }
    } else {
      this.update({ follows: this.state.follows.filter((f) => f.roomId !== id) });
    }
  }

  // --- posting -----------------------------------------------------------------------------

  /** Posts a message; it stays pending (and is re-sent after a reconnect) until acknowledged. */
  post(id: number, text: string, opts: { title?: string; alert?: boolean } = {}): void {
    const p: PendingPost = {
      clientId: newClientId(),
      text,
      title: opts.title || undefined,
      alert: opts.alert || undefined,
      status: 'sending',
    };
    this.patchRoom(id, { pending: [...this.room(id).pending, p] });
    void this.sendPost(id, p);
  }

  /**
   * Posts for a room's add-in and answers with the server's reply (or its error): the normal
   * `post` frame, so every server-side check applies; not kept for a retry like the composer's.
   */
  async postNow(
    id: number,
    p: { text: string; title?: string; alert?: boolean },
  ): Promise<{ seq: number }> {
    return this.request<{ seq: number }>('post', {
      roomId: id,
      text: p.text,
      title: p.title,
      alert: p.alert,
      clientId: newClientId(),
    });
  }

  retryPost(id: number, clientId: string): void {
    const p = this.room(id).pending.find((x) => x.clientId === clientId);
    if (!p) return;
    const again = { ...p, status: 'sending' as const, error: undefined };
    this.replacePending(id, again);
    void this.sendPost(id, again);
  }

  discardPost(id: number, clientId: string): void {
    this.patchRoom(id, { pending: this.room(id).pending.filter((x) => x.clientId !== clientId) });
  }

  private async sendPost(id: number, p: PendingPost): Promise<void> {
    try {
      await this.request('post', {
        roomId: id,
        text: p.text,
        title: p.title,
        alert: p.alert,
        clientId: p.clientId,
      });
      // The message itself arrives as a live event; settlePending drops the pending copy then.
    } catch (err) {
      const e =
        err instanceof ApiError ? err : new ApiError({ code: 'error', message: String(err) });
      // Offline: stays 'sending' and is re-sent with the same clientId after the reconnect.
      if (e.code === 'disconnected') return;
      this.replacePending(id, {
        ...p,
        status: 'failed',
        error: e.code === 'post_not_allowed' ? e.code : e.message,
      });
    }
  }

  // --- files -------------------------------------------------------------------------------

  /**
   * Uploads a file into the room (`POST /rooms/:id/files`); the server posts the message that
   * links to it, which arrives like any other. A refusal (size limit, uploads off) stays shown.
   */
  async uploadFile(id: number, file: File): Promise<void> {
    const up: UploadState = { clientId: newClientId(), name: file.name, status: 'uploading' };
    const limitKb = this.state.limits?.maxFileSizeKb;
    if (limitKb !== undefined && file.size > limitKb * 1024) {
      // The server would refuse it the same way; no need to send it first.
      const error = { code: 'file_too_large', message: 'file too large', details: { limitKb } };
      this.patchRoom(id, {
        uploads: [...this.room(id).uploads, { ...up, status: 'failed', error }],
      });
      return;
    }
    this.patchRoom(id, { uploads: [...this.room(id).uploads, up] });
    const query = new URLSearchParams({
      name: file.name,
      contentType: /^[\w.+-]+\/[\w.+-]+$/.test(file.type) ? file.type : 'application/octet-stream',
      clientId: up.clientId,
    });
    try {
      await this.http('POST', `/rooms/${id}/files?${query.toString()}`, file);
      this.dismissUpload(id, up.clientId);
    } catch (err) {
      const e =
        err instanceof ApiError ? err : new ApiError({ code: 'error', message: String(err) });
      this.patchRoom(id, {
        uploads: this.room(id).uploads.map((u) =>
          u.clientId === up.clientId
            ? {
                ...u,
                status: 'failed',
                error: { code: e.code, message: e.message, details: e.details },
              }
            : u,
        ),
      });
    }
  }

  dismissUpload(id: number, clientId: string): void {
    this.patchRoom(id, { uploads: this.room(id).uploads.filter((u) => u.clientId !== clientId) });
  }

  /** A short-lived download URL for a file (the URL itself is the credential). */
  async fileLink(fileId: number): Promise<string> {
    const reply = await this.http<{ url: string }>('GET', `/files/${fileId}/link`);
    // The link is relative to the front end that signed it; another pool's goes through ours.
    const url =
      this.pool === undefined
        ? reply.url
        : reply.url.replace(/^\/api\/v1\//, `/api/v1/remote/${encodeURIComponent(this.pool)}/`);
    return `${this.server}${url}`;
  }

  private replacePending(id: number, p: PendingPost): void {
    this.patchRoom(id, {
      pending: this.room(id).pending.map((x) => (x.clientId === p.clientId ? p : x)),
    });
  }

  private settlePending(id: number): void {
    const rs = this.room(id);
    if (rs.pending.length === 0) return;
    const seen = new Set(rs.messages.map((m) => m.clientId).filter(Boolean));
    const left = rs.pending.filter((p) => !seen.has(p.clientId));
    if (left.length !== rs.pending.length) this.patchRoom(id, { pending: left });
  }
}

/** A feed match, with when this client received it (for "new since last looked"). */
export type FeedMatch = MessageView & { receivedAt: number };

function notificationPermission(): NotificationPermission | 'unsupported' {
  return typeof Notification === 'undefined' ? 'unsupported' : Notification.permission;
}

function sortFollows(list: FollowCounts[]): FollowCounts[] {
  return list
    .map(({ roomId, name, lastReadSeq, lastSeq, mentions }) => ({
      roomId,
      name,
      lastReadSeq,
      lastSeq,
      mentions,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

function readSession(storage: Storage): Session | null {
  try {
    const raw = storage.getItem(SESSION_KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Session;
    return typeof s.token === 'string' && s.expiresAt > Date.now() ? s : null;
  } catch {
    return null;
  }
}

function newClientId(): string {
  return typeof crypto.randomUUID === 'function'
    ? crypto.randomUUID()
    : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
        b.toString(16).padStart(2, '0'),
      ).join('');
}
