export {
  type Delivery,
  DeliveryError,
  deliverOnce,
  deliverWithRetries,
  deliveryHeaders,
  syncRetryDelayMs,
} from './delivery.js';
export {
  createEventDispatcher,
  type EventDispatcher,
  type EventDispatcherDeps,
  EventQueueError,
  RequiredWebhookError,
} from './dispatcher.js';
export { actorOf, emitForRequest } from './emit.js';
export {
  createEvent,
  type EventActor,
  type EventInput,
  encodeEvent,
  eventRepository,
  type RegistryEvent,
} from './event.js';
export {
  EVENT_DELIVERY_JOB,
  EVENTS_QUEUE,
  type EventDeliveryHandlerDeps,
  type EventDeliveryPayload,
  eventDeliveryHandler,
  eventDeliveryLockKey,
  parseEventDeliveryPayload,
  type QueuedEvent,
} from './job.js';
export { recordDeliveryAttempt, registerDeliveryMetrics } from './metrics.js';
export { matchesRepositoryFilter, type NamedWebhook, wantsEvent, webhooksFor } from './selection.js';
export { SIGNATURE_HEADER, signBody, verifySignature } from './signature.js';
