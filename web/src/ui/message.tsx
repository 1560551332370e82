import { lang, t } from '../i18n.js';
import { linkify } from '../logic.js';
import type { MessageView } from '../types.js';
import { Link } from './link.js';

const timeFormat = new Intl.DateTimeFormat(lang, { hour: '2-digit', minute: '2-digit' });
const dateFormat = new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short' });

/** Message text as text nodes and safe links; nothing in it is ever parsed as markup. */
export function MessageText({ text }: { text: string }) {
  return (
    <>
      {linkify(text, location.origin).map((p, i) =>
        p.kind === 'text' ? (
          p.text
        ) : p.kind === 'room' ? (
          <Link key={i} href={`/rooms/${p.roomId}`}>
            {p.text}
          </Link>
        ) : (
          <a key={i} href={p.href} target="_blank" rel="noopener noreferrer nofollow">
            {p.text}
          </a>
        ),
      )}
    </>
  );
}

export function Message({ m, highlight }: { m: MessageView; highlight?: boolean }) {
  const cls = ['message', m.alert ? 'alert' : '', highlight ? 'highlight' : ''].join(' ').trim();
  return (
    <li class={cls} data-seq={m.seq} id={`m-${m.seq}`} data-testid="message">
      <div class="message-meta">
        <span class="author" title={m.author.name}>
          {m.author.displayName}
        </span>
        <time dateTime={new Date(m.ts).toISOString()} title={dateFormat.format(m.ts)}>
          {timeFormat.format(m.ts)}
        </time>
        {m.alert && <span class="tag alert-tag">{t.alertLabel}</span>}
      </div>
      {m.title ? (
        <details class="story">
          <summary>
            <span class="story-title">{m.title}</span>
          </summary>
          <div class="message-text">
            <MessageText text={m.text} />
          </div>
        </details>
      ) : (
        <div class="message-text">
          <MessageText text={m.text} />
        </div>
      )}
      {m.file && (
        <div class="file">
          📎 {m.file.name} ({Math.ceil(m.file.size / 1024)} KB)
        </div>
      )}
    </li>
  );
}
