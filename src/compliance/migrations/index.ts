import type { Migration } from '../../store/migrations/index.js';
import * as m001 from './001-initial.js';
import * as m002 from './002-legal-holds.js';
import * as m003 from './003-category-holds.js';

/** Compliance store migrations, listed explicitly and applied in key order. Never edit a shipped one. */
export const complianceMigrations: Record<string, Migration> = {
  '001': m001,
  '002': m002,
  '003': m003,
};
