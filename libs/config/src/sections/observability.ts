import { float, httpUrl } from '../scalars.js';
import { optional, required, table } from '../schema.js';
import type { ObservabilityConfig, TracingConfig } from '../types.js';

export const tracingSchema = table<TracingConfig>({
  endpoint: required(httpUrl()),
  sampling_rate: required(float(0, 1)),
});

/** `[observability]`: logging and metrics need no configuration; tracing is opt-in. */
export const observabilitySchema = table<ObservabilityConfig>({
  tracing: optional(tracingSchema),
});
