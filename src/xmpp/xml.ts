import { StringDecoder } from 'node:string_decoder';
import { SaxesParser } from 'saxes';

/** A parsed or built XML element: a name, its attributes (with `xmlns`) and its children. */
export class XmlElement {
  readonly children: (XmlElement | string)[] = [];

  constructor(
    readonly name: string,
    readonly attrs: Record<string, string> = {},
  ) {}

  /** Appends a child element or text (skips undefined and empty text); returns this. */
  c(...children: (XmlElement | string | undefined | null | false)[]): this {
    for (const child of children) {
      if (child === undefined || child === null || child === false || child === '') continue;
      this.children.push(child);
    }
    return this;
  }

  /** The first child element with this name (and namespace, when given). */
  child(name: string, xmlns?: string): XmlElement | undefined {
    for (const c of this.children) {
      if (
        typeof c !== 'string' &&
        c.name === name &&
        (xmlns === undefined || c.attrs.xmlns === xmlns)
      )
        return c;
    }
    return undefined;
  }

  elements(): XmlElement[] {
    return this.children.filter((c): c is XmlElement => typeof c !== 'string');
  }

  /** The element's own text (its text children joined). */
  text(): string {
    return this.children.filter((c): c is string => typeof c === 'string').join('');
  }

  toString(): string {
    let out = `<${this.name}`;
    for (const [k, v] of Object.entries(this.attrs)) out += ` ${k}="${escapeXml(v)}"`;
    if (this.children.length === 0) return `${out}/>`;
    out += '>';
    for (const c of this.children) out += typeof c === 'string' ? escapeXml(c) : c.toString();
    return `${out}</${this.name}>`;
  }
}

/** Builds an element: `x('message', { to }, x('body', {}, text))`. */
export function x(
  name: string,
  attrs: Record<string, string | number | undefined> = {},
  ...children: (XmlElement | string | undefined | null | false)[]
): XmlElement {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) clean[k] = String(v);
  return new XmlElement(name, clean).c(...children);
}

const escapes: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

/** Characters XML 1.0 cannot carry (§2.2): most controls, lone surrogates, U+FFFE and U+FFFF. */
const forbidden =
  // eslint-disable-next-line no-control-regex -- matching those controls is the point
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Escapes text and attribute values; drops characters XML 1.0 cannot carry. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => escapes[c]!).replace(forbidden, '');
}

export interface StreamParserLimits {
  /** Largest stanza (or run of text between stanzas), in characters. */
  maxStanzaChars: number;
  /** Deepest element nesting inside a stanza. */
  maxDepth: number;
}

/** A condition of RFC 6120 §4.9.3 with the text sent along with it. */
export interface StreamProblem {
  condition: 'not-well-formed' | 'restricted-xml' | 'policy-violation' | 'invalid-namespace';
  text: string;
}

export interface StreamParserEvents {
  streamStart(attrs: Record<string, string>): void;
  stanza(el: XmlElement): void;
  streamEnd(): void;
  problem(p: StreamProblem): void;
}

/** Bytes are fed to the parser in slices of this many, so the size check runs often enough. */
const sliceBytes = 16 * 1024;

/**
 * Parses one XML stream (RFC 6120 §4) with saxes, a streaming parser: the `<stream:stream>` root,
 * then each top-level child as a complete stanza. Refuses what the RFC restricts (a DOCTYPE, so no
 * entity can be declared, let alone expanded; comments; processing instructions), stanzas larger or
 * deeper than the limits, and anything not well-formed; after the first problem it ignores the
 * rest. A new parser is made for every stream restart (after STARTTLS and SASL).
 */
export class StreamParser {
  private readonly parser = new SaxesParser({ xmlns: false, position: true });
  private readonly decoder = new StringDecoder('utf8');
  private readonly stack: XmlElement[] = [];
  private depth = 0;
  /** Position (characters) where the current stanza, or the text before it, began. */
  private mark = 0;
  private failed = false;

  constructor(
    private readonly limits: StreamParserLimits,
    private readonly on: StreamParserEvents,
  ) {
    const p = this.parser;
    p.on('doctype', () => this.fail('restricted-xml', 'a DOCTYPE is not allowed in XMPP'));
    p.on('comment', () => this.fail('restricted-xml', 'comments are not allowed in XMPP'));
    p.on('processinginstruction', () =>
      this.fail('restricted-xml', 'processing instructions are not allowed in XMPP'),
    );
    p.on('error', (err) => {
      const undefinedEntity = /undefined entity/i.test(err.message);
      this.fail(
        undefinedEntity ? 'restricted-xml' : 'not-well-formed',
        undefinedEntity ? 'entity references are not allowed' : 'the stream is not well-formed XML',
      );
    });
    p.on('opentag', (tag) => this.open(tag.name, tag.attributes as Record<string, string>));
    p.on('closetag', () => this.close());
    p.on('text', (text) => this.text(text));
    p.on('cdata', (text) => this.text(text));
  }

  /** Whether a stanza has begun and not yet ended. */
  get midStanza(): boolean {
    return this.stack.length > 0;
  }

  /** Feeds bytes from the socket. */
  write(chunk: Buffer): void {
    for (let i = 0; i < chunk.length && !this.failed; i += sliceBytes) {
      const text = this.decoder.write(chunk.subarray(i, i + sliceBytes));
      try {
        this.parser.write(text);
      } catch {
        this.fail('not-well-formed', 'the stream is not well-formed XML');
      }
      if (!this.failed && this.parser.position - this.mark > this.limits.maxStanzaChars) {
        this.fail(
          'policy-violation',
          `a stanza may be at most ${this.limits.maxStanzaChars} characters`,
        );
      }
    }
  }

  private fail(condition: StreamProblem['condition'], text: string): void {
    if (this.failed) return;
    this.failed = true;
    this.on.problem({ condition, text });
  }

  private open(name: string, attrs: Record<string, string>): void {
    if (this.failed) return;
    if (this.depth === 0) {
      this.depth = 1;
      this.mark = this.parser.position;
      if (name !== 'stream:stream' || attrs['xmlns:stream'] !== 'http://etherx.jabber.org/streams')
        return this.fail('invalid-namespace', 'expected <stream:stream> of the streams namespace');
      this.on.streamStart(attrs);
      return;
    }
    this.depth += 1;
    if (this.depth - 1 > this.limits.maxDepth)
      return this.fail(
        'policy-violation',
        `elements may nest at most ${this.limits.maxDepth} deep`,
      );
    const el = new XmlElement(name, { ...attrs });
    const parent = this.stack.at(-1);
    if (parent) {
      // Children inherit the default namespace, so lookups by namespace work on them too.
      if (el.attrs.xmlns === undefined && parent.attrs.xmlns !== undefined)
        el.attrs.xmlns = parent.attrs.xmlns;
      parent.children.push(el);
    }
    this.stack.push(el);
  }

  private close(): void {
    if (this.failed) return;
    this.depth -= 1;
    if (this.depth === 0) {
      this.on.streamEnd();
      return;
    }
    const el = this.stack.pop();
    if (this.stack.length === 0 && el) {
      this.mark = this.parser.position;
      this.on.stanza(el);
    }
  }

  private text(text: string): void {
    if (this.failed) return;
    const top = this.stack.at(-1);
    if (top) top.children.push(text);
    else this.mark = this.parser.position; // whitespace keep-alives between stanzas
  }
}
