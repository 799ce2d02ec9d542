export {
  DEFAULT_LOG_FILTER,
  isLevelEnabled,
  LOG_LEVELS,
  type LogFilter,
  type LogLevel,
  parseLogFilter,
  verbosityFor,
} from './log-filter.js';
export {
  createLogger,
  type LogFields,
  type LogFormat,
  type Logger,
  type LoggerOptions,
  ROOT_TARGET,
  silentLogger,
} from './logger.js';
export {
  createMetrics,
  type HistogramDefinition,
  HTTP_DURATION_BUCKETS,
  type HttpMetrics,
  type MetricDefinition,
  type Metrics,
} from './metrics.js';
