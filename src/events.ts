import type { DomainEvent } from './domain/events.js';
import type { EventSink } from './domain/types.js';
import type { Logger } from './logger.js';

/**
 * In-process event bus: the domain publishes after commit, subscribers (the realtime hub, later
 * the cluster fan-out) receive synchronously in publication order. A failing subscriber is logged
 * and does not stop the others.
 */
export class EventBus implements EventSink {
  private readonly subscribers: ((event: DomainEvent) => void)[] = [];

  constructor(private readonly log: Logger) {}

  subscribe(fn: (event: DomainEvent) => void): () => void {
    this.subscribers.push(fn);
    return () => {
      const i = this.subscribers.indexOf(fn);
      if (i >= 0) this.subscribers.splice(i, 1);
    };
  }

  publish(event: DomainEvent): void {
    for (const fn of this.subscribers) {
      try {
        fn(event);
      } catch (err) {
        this.log.error({ err, event: event.type }, 'event subscriber failed');
      }
    }
  }
}
