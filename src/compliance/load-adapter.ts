import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AdapterFactory, AdapterSettings, ComplianceAdapter } from './adapter.js';
import { createJsonlAdapter } from './jsonl-adapter.js';
import { createXmlAdapter } from './xml-adapter.js';

/**
 * Creates the adapter a configuration names. Custom adapters are ES modules in `adapterDir`
 * (put there by the operator, like Lync's adapter assembly), never a path from the API.
 */
export async function loadAdapter(
  settings: AdapterSettings,
  adapterDir: string,
): Promise<ComplianceAdapter> {
  if (settings.type === 'xml') return createXmlAdapter(settings);
  if (settings.type === 'jsonl') return createJsonlAdapter(settings);
  const file = ['.mjs', '.js']
    .map((ext) => path.join(adapterDir, `${settings.module ?? ''}${ext}`))
    .find((f) => fs.existsSync(f));
  if (!file) throw new Error(`custom adapter module ${settings.module} not found in ${adapterDir}`);
  const mod = (await import(pathToFileURL(file).href)) as {
    createAdapter?: AdapterFactory;
    default?: AdapterFactory;
  };
  const factory = mod.createAdapter ?? mod.default;
  if (typeof factory !== 'function') {
    throw new Error(`custom adapter ${file} exports no createAdapter(settings) function`);
  }
  const adapter = await factory(settings);
  if (typeof adapter?.translate !== 'function') {
    throw new Error(`custom adapter ${file}: createAdapter() returned no translate()`);
  }
  return adapter;
}
