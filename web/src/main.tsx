import { render } from 'preact';
import { lang } from './i18n.js';
import { Model } from './model.js';
import { App } from './ui/app.js';
import { ModelContext } from './ui/hooks.js';

document.documentElement.lang = lang;
const model = new Model(sessionStorage);
model.connect();
render(
  <ModelContext.Provider value={model}>
    <App />
  </ModelContext.Provider>,
  document.getElementById('app')!,
);
