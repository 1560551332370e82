import { useEffect, useState } from 'preact/hooks';
import { t } from '../i18n.js';
import { useRoute } from '../router.js';
import { Directory } from './directory.js';
import { FeedPage, FeedsPage } from './feeds.js';
import { ModelContext, useModel } from './hooks.js';
import { Invitations } from './invitations.js';
import { RoomForm } from './room-form.js';
import { RoomPage } from './room.js';
import { Search } from './search.js';
import { Sidebar } from './sidebar.js';
import { SignIn } from './sign-in.js';
import { ConnectionBadge } from './status.js';

export function App() {
  const [, state] = useModel();
  if (!state.session) return <SignIn />;
  return <Shell />;
}

function Shell() {
  const [model, state] = useModel();
  const route = useRoute();
  const [menuOpen, setMenuOpen] = useState(false);
  const user = state.session!.user;

  useEffect(() => setMenuOpen(false), [route]);

  let main;
  switch (route.name) {
    case 'room':
      main = <RoomPage key={`${route.pool ?? ''}/${route.id}`} id={route.id} seq={route.seq} />;
      break;
    case 'settings':
      main = <RoomForm key={`edit-${route.pool ?? ''}/${route.id}`} roomId={route.id} />;
      break;
    case 'new':
      main = <RoomForm key="new" />;
      break;
    case 'directory':
      main = <Directory />;
      break;
    case 'search':
      main = <Search />;
      break;
    case 'invitations':
      main = <Invitations />;
      break;
    case 'feeds':
      main = <FeedsPage />;
      break;
    case 'feed':
      main = <FeedPage key={route.key} feedKey={route.key} />;
      break;
    default:
      main = (
        <section class="welcome">
          <h1>{t.appName}</h1>
          <p>{t.welcome}</p>
        </section>
      );
  }

  // A room of another pool: its page speaks with that pool's model.
  if ((route.name === 'room' || route.name === 'settings') && route.pool !== undefined) {
    main = <ModelContext.Provider value={model.forPool(route.pool)}>{main}</ModelContext.Provider>;
  }

  return (
    <div class={`shell${menuOpen ? ' menu-open' : ''}`}>
      <a class="skip-link" href="#main">
        {t.skipToContent}
      </a>
      <header class="topbar">
        <button
          type="button"
          class="icon-button menu-button"
          aria-expanded={menuOpen}
          aria-controls="sidebar"
          aria-label={menuOpen ? t.closeMenu : t.menu}
          onClick={() => setMenuOpen(!menuOpen)}
        >
          <span aria-hidden="true">☰</span>
        </button>
        <span class="brand-mark small" aria-hidden="true">
          P
        </span>
        <span class="topbar-title">{t.appName}</span>
        <ConnectionBadge />
        <span class="spacer" />
        <span class="user" data-testid="current-user" title={user.name}>
          {user.displayName}
        </span>
        <button type="button" class="ghost" onClick={() => void model.signOut()}>
          {t.signOut}
        </button>
      </header>
      <Sidebar />
      <main id="main" class="main" tabIndex={-1}>
        {main}
      </main>
    </div>
  );
}
