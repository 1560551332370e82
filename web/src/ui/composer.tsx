import { useRef, useState } from 'preact/hooks';
import { t } from '../i18n.js';
import type { PendingPost } from '../model.js';
import type { RoomView } from '../types.js';
import { useModel } from './hooks.js';

export function Composer({ id, room }: { id: number; room: RoomView; pending: PendingPost[] }) {
  const [model, state] = useModel();
  const [text, setText] = useState('');
  const [title, setTitle] = useState('');
  const [story, setStory] = useState(false);
  const [alert, setAlert] = useState(false);
  const input = useRef<HTMLTextAreaElement>(null);
  const max = state.limits?.maxMessageChars;

  if (!room.my.canPost) {
    return (
      <p class="composer-blocked" role="note" data-testid="cannot-post">
        {room.type === 'auditorium' ? t.post_not_allowed : t.cannotPost}
      </p>
    );
  }

  function send() {
    const body = text.trim();
    if (!body || (story && !title.trim())) return;
    model.post(id, body, { title: story ? title.trim() : undefined, alert });
    setText('');
    setTitle('');
    setStory(false);
    setAlert(false);
    input.current?.focus();
  }

  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        send();
      }}
    >
      {story && (
        <input
          class="story-title-input"
          aria-label={t.storyTitle}
          placeholder={t.storyTitle}
          maxLength={256}
          value={title}
          onInput={(e) => setTitle(e.currentTarget.value)}
        />
      )}
      <div class="composer-row">
        <textarea
          ref={input}
          rows={2}
          aria-label={t.messageLabel}
          aria-describedby="composer-hint"
          placeholder={`${t.messageLabel} — ${room.name}`}
          maxLength={max}
          value={text}
          onInput={(e) => setText(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
              e.preventDefault();
              send();
            }
          }}
        />
        <button type="submit" class="primary" disabled={!text.trim()}>
          {t.send}
        </button>
      </div>
      <div class="composer-options">
        <label class="check">
          <input
            type="checkbox"
            checked={story}
            onChange={(e) => setStory(e.currentTarget.checked)}
          />
          {t.story}
        </label>
        <label class="check">
          <input
            type="checkbox"
            checked={alert}
            onChange={(e) => setAlert(e.currentTarget.checked)}
          />
          {t.alert}
        </label>
        <span id="composer-hint" class="muted small">
          {t.composerHint}
        </span>
      </div>
    </form>
  );
}
