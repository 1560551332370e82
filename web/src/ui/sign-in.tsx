import { useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import { errorText, t } from '../i18n.js';
import { useModel } from './hooks.js';

export function SignIn() {
  const [model, state] = useModel();
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(
    state.notice ? errorText(state.notice, state.notice) : null,
  );

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await model.signIn(login.trim(), password);
    } catch (err) {
      const e2 =
        err instanceof ApiError ? err : new ApiError({ code: 'error', message: String(err) });
      setError(errorText(e2.code, e2.message));
      setBusy(false);
    }
  }

  return (
    <main class="sign-in" id="main">
      <form
        class="card sign-in-card"
        onSubmit={(e) => void submit(e)}
        aria-labelledby="sign-in-title"
      >
        <div class="brand" aria-hidden="true">
          <span class="brand-mark">P</span>
        </div>
        <h1 id="sign-in-title">{t.signInTitle}</h1>
        <label>
          {t.login}
          <input
            name="login"
            autoComplete="username"
            required
            value={login}
            onInput={(e) => setLogin(e.currentTarget.value)}
          />
        </label>
        <label>
          {t.password}
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {error && (
          <p class="form-error" role="alert" data-testid="sign-in-error">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? t.signingIn : t.signIn}
        </button>
      </form>
    </main>
  );
}
