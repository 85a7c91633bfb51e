import js from "@eslint/js"
import tseslint from "typescript-eslint"

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/build/**", "**/dist/**", "**/out/**", "packages/bench/results/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
      "@typescript-eslint/no-namespace": "off",
      // `interface User extends Schema.Schema.Type<typeof User> {}` names a schema's type, as Effect does.
      "@typescript-eslint/no-empty-object-type": ["error", { allowInterfaces: "with-single-extends" }],
      "require-yield": "off"
    }
  },
  {
    // A program that imports the core loads what the core imports: @effect/platform's index is all of the platform
    // (~75 ms of a fresh process's start), so the core takes its modules by path. Types are erased: allowed.
    files: ["packages/core/src/**/*.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": ["error", {
        paths: [{ name: "@effect/platform", message: "Import the module by path (@effect/platform/HttpClient).", allowTypeImports: true }]
      }]
    }
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    languageOptions: { globals: { process: "readonly", console: "readonly" } }
  }
)
