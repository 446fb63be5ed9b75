/** berth's version, shown by `berth version` and the API. */
export const VERSION = "0.1.0";
