import { useRef, useState } from 'preact/hooks';
import { errorText, t } from '../i18n.js';
import type { PendingPost, UploadState } from '../model.js';
import type { RoomView } from '../types.js';
import { useModel } from './hooks.js';

export function Composer({
  id,
  room,
  uploads,
}: {
  id: number;
  room: RoomView;
  pending: PendingPost[];
  uploads: UploadState[];
}) {
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
        {room.fileUpload && (
          <label class="button secondary file-button">
            {t.attachFile}
            <input
              type="file"
              class="visually-hidden"
              data-testid="attach-file"
              onChange={(e) => {
                const input = e.currentTarget;
                for (const f of Array.from(input.files ?? [])) void model.uploadFile(id, f);
                input.value = '';
              }}
            />
          </label>
        )}
        <span id="composer-hint" class="muted small">
          {t.composerHint}
        </span>
      </div>
      {uploads.length > 0 && <Uploads id={id} uploads={uploads} />}
    </form>
  );
}

function Uploads({ id, uploads }: { id: number; uploads: UploadState[] }) {
  const [model] = useModel();
  return (
    <ul class="uploads" data-testid="uploads">
      {uploads.map((u) =>
        u.status === 'uploading' ? (
          <li key={u.clientId} role="status" class="muted small">
            {t.uploading(u.name)}
          </li>
        ) : (
          <li key={u.clientId} role="alert" class="upload-failed" data-testid="upload-error">
            <span>
              {t.uploadFailed(u.name)}: {uploadErrorText(u.error)}
            </span>
            <button
              type="button"
              class="link-button"
              onClick={() => model.dismissUpload(id, u.clientId)}
            >
              {t.dismiss}
            </button>
          </li>
        ),
      )}
    </ul>
  );
}

function uploadErrorText(error: UploadState['error']): string {
  if (!error) return '';
  const limitKb = error.details?.limitKb;
  if (error.code === 'file_too_large' && typeof limitKb === 'number')
    return t.fileTooLarge(limitKb);
  return errorText(error.code, error.message);
}
