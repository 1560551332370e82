import { useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import { errorText, lang, t } from '../i18n.js';
import { linkify } from '../logic.js';
import type { MessageView } from '../types.js';
import { useModel } from './hooks.js';
import { Link } from './link.js';

const timeFormat = new Intl.DateTimeFormat(lang, { hour: '2-digit', minute: '2-digit' });
const dateFormat = new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short' });

/** A message found elsewhere (search, feeds), linking into its room at that message. */
export function MessageCard({ m, roomName }: { m: MessageView; roomName: string | undefined }) {
  const [model] = useModel();
  return (
    <li class="card">
      <div class="message-meta">
        <Link href={model.roomPath(m.roomId, `?seq=${m.seq}`)}>{roomName ?? `#${m.roomId}`}</Link>
        {model.pool !== undefined && <span class="tag">{model.pool}</span>}
        <span class="author">{m.author.displayName}</span>
        <time dateTime={new Date(m.ts).toISOString()}>{dateFormat.format(m.ts)}</time>
      </div>
      {m.title && <div class="story-title">{m.title}</div>}
      <div class="message-text">
        <MessageText text={m.text} />
      </div>
    </li>
  );
}

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

/**
 * A file attached to a message. The download URL carries a short-lived token, so it is fetched
 * on click rather than rendered into the page.
 */
function FileLink({ file }: { file: NonNullable<MessageView['file']> }) {
  const [model] = useModel();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function download() {
    setError(null);
    setBusy(true);
    try {
      const a = document.createElement('a');
      a.href = await model.fileLink(file.id);
      a.download = file.name;
      a.rel = 'noopener';
      a.click();
    } catch (err) {
      setError(err instanceof ApiError ? errorText(err.code, err.message) : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div class="file" data-testid="file">
      <button
        type="button"
        class="secondary file-download"
        disabled={busy}
        onClick={() => void download()}
      >
        <span class="visually-hidden">{t.download}</span>
        <span class="file-name">{file.name}</span>
        <span class="muted small">{t.fileSize(file.size)}</span>
      </button>
      {error && (
        <span role="alert" class="field-error small">
          {error}
        </span>
      )}
    </div>
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
      {m.file && <FileLink file={m.file} />}
    </li>
  );
}
