import { t } from '../i18n.js';
import { useModel } from './hooks.js';

const labels = {
  connecting: t.statusConnecting,
  syncing: t.statusSyncing,
  online: t.statusOnline,
  offline: t.statusOffline,
  stopped: t.statusStopped,
};

/** The connection state, announced politely to screen readers when it changes. */
export function ConnectionBadge() {
  const [model, state] = useModel();
  return (
    <span class="connection">
      <span
        class={`status status-${state.status}`}
        role="status"
        aria-live="polite"
        data-testid="connection-status"
        data-status={state.status}
      >
        <span class="dot" aria-hidden="true" />
        {labels[state.status]}
      </span>
      {state.status === 'offline' && (
        <button type="button" class="link-button" onClick={() => model.retryNow()}>
          {t.retryNow}
        </button>
      )}
    </span>
  );
}
