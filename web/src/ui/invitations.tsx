import { useEffect } from 'preact/hooks';
import { lang, t } from '../i18n.js';
import { useModel } from './hooks.js';
import { Link } from './link.js';

const dateFormat = new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short' });

export function Invitations() {
  const [model, state] = useModel();
  const online = state.status === 'online';
  const unseen = state.invitations.filter((i) => i.seenAt === null).map((i) => i.id);

  useEffect(() => {
    if (online) void model.refreshInvitations();
  }, [online]);

  // Seeing the inbox marks its invitations seen (the badge clears next time).
  useEffect(() => {
    if (online && unseen.length > 0)
      model.request('invitations_seen', { ids: unseen }).catch(() => undefined);
  }, [online, unseen.join(',')]);

  return (
    <section class="page" aria-labelledby="invitations-title">
      <h1 id="invitations-title">{t.invitations}</h1>
      {state.invitations.length === 0 ? (
        <p class="muted">{t.noInvitations}</p>
      ) : (
        <ul class="cards" data-testid="invitations">
          {state.invitations.map((i) => (
            <li key={i.id} class="card">
              <p>
                {t.invitedTo} <Link href={model.roomPath(i.room.id)}>{i.room.name}</Link>
                {i.seenAt === null && <span class="tag">{t.newBadge}</span>}
              </p>
              {i.room.description && <p class="muted">{i.room.description}</p>}
              <p class="muted small">
                <time dateTime={new Date(i.createdAt).toISOString()}>
                  {dateFormat.format(i.createdAt)}
                </time>
              </p>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
