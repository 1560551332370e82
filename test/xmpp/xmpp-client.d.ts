// The parts of @xmpp/client 0.14 (which ships no types) that the tests use.
declare module '@xmpp/client' {
  import type { EventEmitter } from 'node:events';
  import type { Socket } from 'node:net';

  export interface Element {
    name: string;
    attrs: Record<string, string | undefined>;
    children: (Element | string)[];
    is(name: string, xmlns?: string): boolean;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildText(name: string, xmlns?: string): string | null;
    getChildElements(): Element[];
    text(): string;
    toString(): string;
  }

  export interface Client extends EventEmitter {
    socket: Socket | null;
    jid: { toString(): string } | null;
    start(): Promise<{ toString(): string }>;
    stop(): Promise<void>;
    send(...els: Element[]): Promise<void>;
    isSecure(): boolean;
    reconnect: { stop(): void };
    iqCaller: { request(el: Element, timeout?: number): Promise<Element> };
  }

  export function client(options: Record<string, unknown>): Client;
  export function xml(
    name: string,
    attrs?: Record<string, string | number | undefined>,
    ...children: (Element | string | undefined)[]
  ): Element;
}
