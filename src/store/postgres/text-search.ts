/**
 * Full-text search on PostgreSQL, made to match what SQLite's FTS5 (`unicode61
 * remove_diacritics 2`) finds. PostgreSQL's own parser does not split text the same way (it keeps
 * `alice@example.com`, host names and `e-mail` as tokens of their own, and removes no accents),
 * so Perch tokenizes in JavaScript, here, and hands PostgreSQL finished `tsvector` and `tsquery`
 * values: its text-search configuration never runs, and a term is matched exactly as FTS5 would.
 */

/** Token characters as FTS5 unicode61 has them: letters, numbers, private use, and diacritics. */
const TOKEN = /[\p{L}\p{N}\p{Co}\u0300-\u036f]+/gu;
const LATIN = /\p{Script=Latin}/gu;
const DIACRITICS = /[\u0300-\u036f]/g;

/** PostgreSQL refuses lexemes of 2,048 bytes or more; four bytes per character at most. */
const MAX_TOKEN_CHARS = 500;
/** Highest position a tsvector keeps, and most positions per lexeme (PostgreSQL limits). */
const MAX_POSITION = 16_383;
const MAX_POSITIONS_PER_LEXEME = 256;
/** A tsvector holds at most 1 MiB of lexeme text; stay clear of it. */
const MAX_LEXEME_BYTES = 1_000_000;

/**
 * Splits text into search tokens the way FTS5 unicode61 with `remove_diacritics 2` does: runs of
 * letters and digits, lower-cased, with accents removed from Latin letters only (FTS5 keeps
 * Greek tonos, for example).
 */
export function searchTokens(text: string): string[] {
  const out: string[] = [];
  for (const match of text.matchAll(TOKEN)) {
    const token = match[0]
      .toLowerCase()
      .replace(LATIN, (c) => c.normalize('NFD'))
      .replace(DIACRITICS, '')
      .normalize('NFC')
      .slice(0, MAX_TOKEN_CHARS);
    if (token !== '') out.push(token);
  }
  return out;
}

function quote(lexeme: string): string {
  return `'${lexeme.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/**
 * The `tsvector` literal of a message. Title and body are separate columns in FTS5, so a phrase
 * never runs from one into the other: a gap of one position keeps them apart here.
 */
export function messageSearchVector(title: string | null, body: string): string {
  const positions = new Map<string, number[]>();
  let position = 0;
  let bytes = 0;
  const add = (tokens: string[]) => {
    for (const token of tokens) {
      position = Math.min(position + 1, MAX_POSITION);
      let list = positions.get(token);
      if (!list) {
        bytes += Buffer.byteLength(token);
        if (bytes > MAX_LEXEME_BYTES) return;
        positions.set(token, (list = []));
      }
      if (list.length < MAX_POSITIONS_PER_LEXEME && list.at(-1) !== position) list.push(position);
    }
  };
  add(searchTokens(title ?? ''));
  position += 1;
  add(searchTokens(body));
  return [...positions].map(([lexeme, list]) => `${quote(lexeme)}:${list.join(',')}`).join(' ');
}

/**
 * The `tsquery` literal that matches messages containing every term and phrase, each as
 * consecutive tokens (FTS5 quotes each one as a phrase). Undefined when one of them has no token
 * at all: FTS5 matches nothing for such a phrase, and neither should PostgreSQL.
 */
export function messageSearchQuery(terms: string[]): string | undefined {
  const parts: string[] = [];
  for (const term of terms) {
    const tokens = searchTokens(term);
    if (tokens.length === 0) return undefined;
    parts.push(`(${tokens.map(quote).join(' <-> ')})`);
  }
  return parts.join(' & ');
}
