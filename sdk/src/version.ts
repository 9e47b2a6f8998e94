/** The SDK's version, reported in worker events (`sw_ver`) and `stats`. */
export const SDK_VERSION = "0.1.0";
