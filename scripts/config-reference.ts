// Rewrites the configuration table in README.md from the config schema (npm run docs:config).
import fs from 'node:fs';
import { withConfigReference } from '../src/config/reference.js';

const file = new URL('../README.md', import.meta.url);
fs.writeFileSync(file, withConfigReference(fs.readFileSync(file, 'utf8')));
process.stdout.write('README.md configuration reference updated\n');
