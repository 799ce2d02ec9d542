/**
 * Size of the chunks blob bytes move in (read streams, write buffering). Large
 * chunks mean fewer syscalls and event-loop turns per gigabyte; 1 MiB matches
 * the streaming frame the configuration reference promises per upload.
 */
export const STREAM_CHUNK_BYTES = 1024 * 1024;
