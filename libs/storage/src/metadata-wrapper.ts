import type { ConditionalWrites, ListPageOptions, MetadataStore } from './types.js';

type GetUncached = (path: string) => Promise<Buffer>;
type PutDeferred = (path: string, data: string) => void;

/** What a wrapper changes of the inner store's optional members; each is given the inner one, bound. */
export interface WrapOptional {
  readonly conditional?: (inner: ConditionalWrites) => ConditionalWrites;
  readonly getUncached?: (inner: GetUncached) => GetUncached;
  readonly putDeferred?: (inner: PutDeferred) => PutDeferred;
}

/**
 * A metadata store in front of another: every call passes through to it unless a subclass
 * overrides it. The optional members exist on the wrapper exactly when the inner store has them
 * (callers test for them), as the inner one or as `wrap` changes it.
 */
export abstract class MetadataStoreWrapper implements MetadataStore {
  readonly backend: string;
  readonly conditional: ConditionalWrites | undefined;
  readonly putDeferred?: PutDeferred;
  readonly getUncached?: GetUncached;
  readonly check?: () => Promise<void>;
  readonly close?: () => Promise<void>;

  constructor(
    protected readonly inner: MetadataStore,
    wrap: WrapOptional = {},
  ) {
    this.backend = inner.backend;
    const { conditional, putDeferred, getUncached, check, close } = inner;
    if (conditional) this.conditional = wrap.conditional ? wrap.conditional(conditional) : conditional;
    if (getUncached) {
      const bound: GetUncached = (path) => getUncached.call(inner, path);
      this.getUncached = wrap.getUncached ? wrap.getUncached(bound) : bound;
    }
    if (putDeferred) {
      const bound: PutDeferred = (path, data) => putDeferred.call(inner, path, data);
      this.putDeferred = wrap.putDeferred ? wrap.putDeferred(bound) : bound;
    }
    if (check) this.check = () => check.call(inner);
    if (close) this.close = () => close.call(inner);
  }

  get(path: string): Promise<Buffer> {
    return this.inner.get(path);
  }

  put(path: string, data: Uint8Array | string): Promise<void> {
    return this.inner.put(path, data);
  }

  putIfAbsent(path: string, data: Uint8Array | string): Promise<boolean> {
    return this.inner.putIfAbsent(path, data);
  }

  delete(path: string): Promise<boolean> {
    return this.inner.delete(path);
  }

  list(prefix: string): Promise<string[]> {
    return this.inner.list(prefix);
  }

  listPage(prefix: string, options: ListPageOptions): Promise<string[]> {
    return this.inner.listPage(prefix, options);
  }

  deletePrefix(prefix: string): Promise<void> {
    return this.inner.deletePrefix(prefix);
  }
}
