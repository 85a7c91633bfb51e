/** The package's version, as its package.json says; `pnpm changeset-version` writes it (scripts/version.mjs). */
export const moduleVersion = "0.1.0"
