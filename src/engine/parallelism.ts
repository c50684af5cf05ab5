/** Resources changed at the same time unless told otherwise (`--parallelism`; waiting for a boot holds no slot). */
export const DEFAULT_PARALLELISM = 4;
