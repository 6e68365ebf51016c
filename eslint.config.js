/**
 * ESLint configuration (flat) for the whole repository: the engine, the
 * relay, the web app, their tests and the scripts.
 *
 * What it checks, on top of `tsc` and `svelte-check` (`npm run lint`):
 * - the recommended rules of ESLint, typescript-eslint and eslint-plugin-svelte
 *   (not the type-aware ones: they take minutes on a small machine);
 * - no import cycles in the source of the engine, the relay and the web app
 *   (`import-x/no-cycle`, components included), and the engine's folder
 *   layering: a folder imports only from the folders below it.
 *
 * Style (indentation, quotes, line breaks) is Prettier's: eslint-config-prettier
 * turns off every rule that would disagree with it.
 *
 * @module
 */
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'eslint/config'
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import svelte from 'eslint-plugin-svelte'
import { importX } from 'eslint-plugin-import-x'
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript'
import prettier from 'eslint-config-prettier'
import globals from 'globals'

/** The source folders of the three packages, where imports are checked. */
const SOURCES = ['packages/engine/src/**', 'apps/relay/src/**', 'apps/web/src/**']

/** Test code: the suites of each package and the integration, browser and bench suites. */
const TESTS = ['packages/*/test/**', 'apps/*/test/**', 'test/**']

/**
 * The engine's folders from the bottom layer up; a folder may import from
 * the layers below its own, never from one above (nor from an entry point).
 * Folders of one layer do not depend on each other either, but that is
 * left to `import-x/no-cycle`.
 */
const ENGINE_LAYERS = [['protocol'], ['model'], ['sync', 'persistence', 'schemas'], ['catalog', 'history', 'presence', 'tabs'], ['records']]

/** The engine's entry points (`@concord/engine` and `@concord/engine/internal`), above every folder. */
const ENGINE_ENTRY_POINTS = ['index.ts', 'internal.ts']

/** `import-x/no-restricted-paths` zones that keep the engine's imports pointing down its layers. */
const engineLayerZones = ENGINE_LAYERS.flatMap((layer, index) => {
  const above = [
    ...ENGINE_LAYERS.slice(index + 1)
      .flat()
      .map((upper) => `${upper}/`),
    ...ENGINE_ENTRY_POINTS,
  ]
  return layer.map((folder) => ({
    target: `./packages/engine/src/${folder}`,
    from: above.map((upper) => `./packages/engine/src/${upper}`),
    message: `The engine's ${folder}/ is a layer below ${above.join(', ')}.`,
  }))
})

/** The parser `import-x` reads components with when it follows imports (see its module comment). */
const svelteModuleParser = fileURLToPath(new URL('./scripts/lint/svelteModuleParser.js', import.meta.url))

export default defineConfig(
  {
    ignores: [
      '**/dist/**',
      'apps/relay/bundle/**',
      '**/node_modules/**',
      '**/data/**',
      '**/coverage/**',
      '**/test-artifacts/**',
      '**/.vite/**',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  svelte.configs.recommended,
  {
    // The scripts of components and runes modules are TypeScript.
    files: ['**/*.svelte', '**/*.svelte.ts'],
    languageOptions: {
      parserOptions: { parser: tseslint.parser, extraFileExtensions: ['.svelte'] },
    },
  },
  {
    // Code runs in Node (relay, scripts, tests) and in browsers (web app, engine, browser tests).
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
    rules: {
      // `== null` is the one loose comparison in use (null or undefined).
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      // `_name` marks a parameter a signature needs but the body does not;
      // `{ dropped, ...rest }` is how a property is left out of a copy.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // Object literals with getters and class expressions need the outer `this` under a name.
      '@typescript-eslint/no-this-alias': 'off',
      // Flags every local `Map`/`Set`, also those built and dropped inside a
      // `$derived` or a helper; the app replaces state, it never mutates a map in place.
      'svelte/prefer-svelte-reactivity': 'off',
    },
  },
  {
    files: TESTS,
    rules: {
      // Stubs of event emitters and Yjs types: `any` where the test does not care.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: SOURCES,
    plugins: { 'import-x': importX },
    languageOptions: { parserOptions: { parser: tseslint.parser } },
    settings: {
      // Resolves `./x.js` to `./x.ts` (NodeNext) and `./x` to `./x.ts` or `./x.svelte.ts` (the web app).
      'import-x/resolver-next': [
        createTypeScriptImportResolver({
          project: ['packages/engine/tsconfig.json', 'apps/relay/tsconfig.json', 'apps/web/tsconfig.json'],
          noWarnOnMultipleProjects: true,
        }),
      ],
      'import-x/extensions': ['.ts', '.js', '.svelte'],
      'import-x/parsers': { [svelteModuleParser]: ['.svelte'], '@typescript-eslint/parser': ['.ts'] },
    },
    rules: {
      // Type-only imports are not followed: they leave no import at run time.
      'import-x/no-cycle': 'error',
    },
  },
  {
    files: ['packages/engine/src/**'],
    rules: {
      'import-x/no-restricted-paths': ['error', { zones: engineLayerZones }],
      // A library: it reports through events and errors, never on the console.
      'no-console': 'error',
    },
  },
  {
    files: ['apps/relay/src/**'],
    rules: {
      // The relay logs through its logger (pino), which has levels and JSON lines.
      'no-console': 'error',
    },
  },
  prettier,
  svelte.configs.prettier,
)
