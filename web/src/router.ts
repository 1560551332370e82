import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { name: 'home' }
  | { name: 'room'; id: number; seq?: number; pool?: string }
  | { name: 'settings'; id: number; pool?: string }
  | { name: 'directory' }
  | { name: 'search' }
  | { name: 'invitations' }
  | { name: 'feeds' }
  | { name: 'feed'; key: string }
  | { name: 'new' };

/**
 * Reads the route from a path: /rooms/12, /rooms/12?seq=40, /rooms/12/settings, ...; a room of
 * another pool is under /pools/{name}: /pools/south/rooms/7.
 */
export function parseRoute(pathname: string, search: string): Route {
  const room =
    /^(?:\/pools\/([A-Za-z0-9][A-Za-z0-9._-]{0,63}))?\/rooms\/(\d+)(\/settings)?\/?$/.exec(
      pathname,
    );
  if (room) {
    const id = Number(room[2]);
    const pool = room[1] === undefined ? {} : { pool: room[1] };
    if (room[3]) return { name: 'settings', id, ...pool };
    const seq = Number(new URLSearchParams(search).get('seq'));
    return Number.isSafeInteger(seq) && seq > 0
      ? { name: 'room', id, seq, ...pool }
      : { name: 'room', id, ...pool };
  }
  if (pathname === '/directory') return { name: 'directory' };
  if (pathname === '/search') return { name: 'search' };
  if (pathname === '/invitations') return { name: 'invitations' };
  if (pathname === '/feeds') return { name: 'feeds' };
  const feed = /^\/feeds\/(mentions|\d+)\/?$/.exec(pathname);
  if (feed) return { name: 'feed', key: feed[1]! };
  if (pathname === '/rooms/new') return { name: 'new' };
  return { name: 'home' };
}

const NAVIGATE = 'perch:navigate';

export function navigate(path: string): void {
  if (path === location.pathname + location.search) return;
  history.pushState(null, '', path);
  window.dispatchEvent(new Event(NAVIGATE));
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.pathname, location.search));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.pathname, location.search));
    window.addEventListener('popstate', on);
    window.addEventListener(NAVIGATE, on);
    return () => {
      window.removeEventListener('popstate', on);
      window.removeEventListener(NAVIGATE, on);
    };
  }, []);
  return route;
}

/** Click handler for in-app links: plain clicks navigate without reloading. */
export function onLinkClick(e: MouseEvent): void {
  const a = e.currentTarget as HTMLAnchorElement;
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey)
    return;
  e.preventDefault();
  navigate(a.pathname + a.search);
}
