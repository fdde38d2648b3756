/** The services' defaults, shared by the configuration and RunnerServices. */

/** Total cache size, and its largest entry: GitHub's per-repository size. */
export const DEFAULT_CACHE_MAX_BYTES = 10 * 1024 ** 3;
/** GitHub removes cache entries not accessed for 7 days. */
export const DEFAULT_CACHE_UNUSED_DAYS = 7;
/** GitHub's default artifact retention. */
export const DEFAULT_ARTIFACT_RETENTION_DAYS = 90;
export const DEFAULT_ARTIFACT_MAX_BYTES = 10 * 1024 ** 3;
