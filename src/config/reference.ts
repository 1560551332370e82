import { configSchema, envNames, type Config } from './config.js';

/** The README's configuration table, generated from the config schema so that it stays true. */
export function configReference(): string {
  const defaults = configSchema.parse({});
  const rows = (Object.keys(envNames) as (keyof Config)[]).map((key) => {
    const description = configSchema.shape[key].description ?? '';
    const text = description.replace(/^PERCH_[A-Z_]+:\s*/, '');
    const value = defaults[key];
    const shown = value === undefined ? '(none)' : `\`${String(value)}\``;
    return `| \`${envNames[key]}\` | ${shown} | ${text} |`;
  });
  return ['| Variable | Default | Meaning |', '|---|---|---|', ...rows].join('\n');
}

const START = '<!-- config-reference:start -->';
const END = '<!-- config-reference:end -->';

/** Replaces the block between the markers in a README text. */
export function withConfigReference(readme: string): string {
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error('README has no config-reference markers');
  return `${readme.slice(0, a + START.length)}\n${configReference()}\n${readme.slice(b)}`;
}
